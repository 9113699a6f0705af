package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/clover-kv/clover/bench"
	"github.com/clover-kv/clover/internal/buildinfo"
)

// errUsage marks errors in how the command was called.
var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "clover-bench",
		Short: "YCSB-style benchmark of Clover (and etcd, for comparison)",
		Long: `clover-bench runs YCSB core workloads (A-F, write-only, read-only; see
bench/workloads) against Clover or etcd and reports throughput and latency
percentiles per operation type.

A benchmark has two phases, as in YCSB: "load" inserts the records, "run"
runs the operation mix over them. Workload settings are YCSB properties,
from files (-P) and single overrides (-p key=value); the flags --clients,
--target, --duration and --warmup override threadcount, target,
maxexecutiontime and warmuptime.

Without --endpoints the clover driver starts an in-process three-node
cluster (EEA localities) for the duration of the command; "run" then loads
the records first.`,
		Version:       buildinfo.Read().String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.AddCommand(newPhaseCmd(bench.PhaseLoad), newPhaseCmd(bench.PhaseRun), newCompareCmd())
	root.SetFlagErrorFunc(flagError)
	for _, c := range root.Commands() {
		c.SetFlagErrorFunc(flagError)
	}
	return root
}

func flagError(_ *cobra.Command, err error) error { return fmt.Errorf("%w: %w", errUsage, err) }

// phaseFlags are the flags of load and run.
type phaseFlags struct {
	propFiles []string
	props     []string

	driver    string
	endpoints []string
	clients   int
	conns     int
	target    float64
	duration  time.Duration
	warmup    time.Duration
	seed      uint64

	keyspace  string
	audit     string
	shards    int
	residency []string
	replicas  int
	read      string
	maxStale  time.Duration
	// TLS files of the clover driver: client certificate, key, cluster CA.
	tlsCert, tlsKey, tlsCA string
	insecure               bool
	opTimeout              time.Duration

	statusInterval time.Duration
	jsonOut        string
	csvOut         string
	htmlOut        string
	labels         []string

	localDir string
	localLog string

	cpuProfile string
}

func newPhaseCmd(phase bench.Phase) *cobra.Command {
	f := &phaseFlags{}
	short := map[bench.Phase]string{
		bench.PhaseLoad: "Insert the workload's records (recordcount, insertstart, insertcount)",
		bench.PhaseRun:  "Run the workload's operation mix over the loaded records",
	}[phase]
	cmd := &cobra.Command{
		Use:   phase.String() + " [flags]",
		Short: short,
		Example: map[bench.Phase]string{
			bench.PhaseLoad: `  clover-bench load -P bench/workloads/workloada -p recordcount=100000 --clients 64 --endpoints 127.0.0.1:7401`,
			bench.PhaseRun: `  clover-bench run -P bench/workloads/workloada --clients 64 --conns 4 -d 30s --warmup 5s --json a.json --html a.html
  clover-bench run -P bench/workloads/workload_readonly --read follower --max-stale 100ms --endpoints 127.0.0.1:7401
  clover-bench run -P bench/workloads/workload_writeonly --driver etcd --endpoints 127.0.0.1:2379 --target 5000 -d 1m`,
		}[phase],
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPhase(cmd, phase, f)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringArrayVarP(&f.propFiles, "property-file", "P", nil, "workload properties file in YCSB syntax (repeatable; later files win)")
	fs.StringArrayVarP(&f.props, "prop", "p", nil, "workload property key=value (repeatable; wins over -P files)")
	fs.StringVar(&f.driver, "driver", "clover", "store to benchmark: clover or etcd")
	fs.StringSliceVar(&f.endpoints, "endpoints", nil, "node addresses (clover gRPC or etcd client); none with the clover driver: an in-process cluster")
	fs.IntVar(&f.clients, "clients", 0, "concurrent clients (workers); sets threadcount")
	fs.IntVar(&f.conns, "conns", 1, "client-library instances (each with its own connections), shared round-robin by the clients")
	fs.Float64Var(&f.target, "target", 0, "total target rate in ops/s, latency measured from intended start times; sets target (0: unthrottled)")
	fs.DurationVarP(&f.duration, "duration", "d", 0, "measured time limit, after the warm-up; sets maxexecutiontime")
	fs.DurationVar(&f.warmup, "warmup", 0, "warm-up before measuring (its operations are not counted); sets warmuptime")
	fs.Uint64Var(&f.seed, "seed", 0, "seed of the random choices; sets seed (0: random)")
	fs.StringVar(&f.keyspace, "keyspace", "bench", "keyspace (clover: created if missing; etcd: key prefix)")
	fs.IntVar(&f.shards, "shards", 8, "clover: shards of a created keyspace")
	fs.StringSliceVar(&f.residency, "residency", []string{"EEA"}, "clover: where a created keyspace may live: jurisdictions and/or countries (EEA, EU, IE) or anywhere")
	fs.IntVar(&f.replicas, "replicas", 3, "clover: replicas per shard of a created keyspace")
	fs.StringVar(&f.audit, "audit", "none", "clover: what a created keyspace's audit log records: all, writes or none (none measures the store alone, as etcd has no audit log)")
	fs.StringVar(&f.read, "read", "linearizable", "read consistency: linearizable; clover: follower; etcd: serializable")
	fs.DurationVar(&f.maxStale, "max-stale", 100*time.Millisecond, "clover: staleness bound of follower reads")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "clover: PEM client certificate of the cluster CA, for a cluster running mutual TLS")
	fs.StringVar(&f.tlsKey, "tls-key", "", "clover: PEM private key of --tls-cert")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "clover: PEM bundle of the cluster CA")
	insecureDef, _ := strconv.ParseBool(os.Getenv("CLOVER_INSECURE"))
	fs.BoolVar(&f.insecure, "insecure", insecureDef, "clover: connect to --endpoints without certificates, to a cluster in insecure mode (env CLOVER_INSECURE)")
	fs.DurationVar(&f.opTimeout, "op-timeout", 10*time.Second, "timeout of each operation (0: none)")
	fs.DurationVar(&f.statusInterval, "status-interval", 5*time.Second, "interval of the status lines on stderr")
	fs.StringVar(&f.jsonOut, "json", "", "write the result as JSON to this file")
	fs.StringVar(&f.csvOut, "csv", "", "write the per-operation summary as CSV to this file")
	fs.StringVar(&f.htmlOut, "html", "", "write a self-contained HTML report with plots to this file")
	fs.StringArrayVar(&f.labels, "label", nil, "tag the result with key=value (repeatable; compare groups by step=NAME)")
	fs.StringVar(&f.localDir, "local-dir", "", "in-process cluster: data directory (default: a temporary one, removed at exit)")
	fs.StringVar(&f.localLog, "local-log", "", "in-process cluster: write the nodes' logs to this file (default: discarded)")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured part (after the warm-up) to this file (with no --endpoints it includes the in-process cluster)")
	return cmd
}
