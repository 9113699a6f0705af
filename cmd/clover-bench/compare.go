package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/clover-kv/clover/bench"
)

func newCompareCmd() *cobra.Command {
	var candidate, baseline string
	var goalFlags []string
	cmd := &cobra.Command{
		Use:   "compare [flags] RESULT.json...",
		Short: "Compare two drivers' results step by step, with throughput and latency ratios",
		Long: `compare reads results written with --json, pairs the candidate driver's
result of each step with the baseline driver's (steps are the "step" label,
or the workload name), and prints throughput, p50 and p99 of both, the
throughput ratio, and whether the goals of each step are met.

A goal is a ratio candidate/baseline of the step's total: ops (throughput)
or a latency (mean, p50, p90, p99, p999, max), e.g. "ops>=3,p99<=1".`,
		Example: `  clover-bench compare --goal write-64='ops>=3,p99<=1' --goal write-1='p50<=0.5' out/*.json`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			goals := map[string][]bench.Goal{}
			var order []string
			for _, g := range goalFlags {
				step, spec, ok := strings.Cut(g, "=")
				if !ok || step == "" {
					return usageErr("--goal %q: want STEP=GOALS", g)
				}
				gs, err := bench.ParseGoals(spec)
				if err != nil {
					return usageErr("--goal %q: %v", g, err)
				}
				goals[step] = gs
				order = append(order, step)
			}
			var results []*bench.Result
			for _, f := range files {
				r, err := bench.ReadJSONFile(f)
				if err != nil {
					return err
				}
				results = append(results, r)
			}
			cs, err := bench.Compare(results, candidate, baseline, goals, order)
			if err != nil {
				return err
			}
			return bench.WriteComparison(cmd.OutOrStdout(), cs, candidate, baseline)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&candidate, "candidate", "clover", "driver whose results are compared")
	fs.StringVar(&baseline, "baseline", "etcd", "driver compared against")
	fs.StringArrayVar(&goalFlags, "goal", nil, "STEP=GOALS, e.g. write-64=ops>=3,p99<=1 (repeatable; sets the step order)")
	return cmd
}
