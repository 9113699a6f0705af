package bench

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Goal is a condition on the ratio of a metric between the candidate and the
// baseline: "ops>=3" wants the candidate's throughput at least 3 times the
// baseline's, "p99<=1" its p99 latency no higher than the baseline's.
type Goal struct {
	// Metric is ops (throughput) or a latency: mean, p50, p90, p99, p999, max.
	Metric string
	// AtLeast is true for >=, false for <=.
	AtLeast bool
	Ratio   float64
}

var goalMetrics = []string{"ops", "mean", "p50", "p90", "p99", "p999", "max"}

// ParseGoals parses comma-separated goals such as "ops>=3,p99<=1". A
// trailing "x" on the ratio is allowed.
func ParseGoals(s string) ([]Goal, error) {
	var out []Goal
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		var g Goal
		var m, ratio string
		if i := strings.Index(part, ">="); i > 0 {
			m, ratio, g.AtLeast = part[:i], part[i+2:], true
		} else if i := strings.Index(part, "<="); i > 0 {
			m, ratio = part[:i], part[i+2:]
		} else {
			return nil, fmt.Errorf("goal %q: want METRIC>=RATIO or METRIC<=RATIO", part)
		}
		g.Metric = strings.TrimSpace(m)
		if !slices.Contains(goalMetrics, g.Metric) {
			return nil, fmt.Errorf("goal %q: metric %q: want one of %s", part, g.Metric, strings.Join(goalMetrics, ", "))
		}
		r, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(ratio), "x"), 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("goal %q: ratio %q: want a positive number", part, ratio)
		}
		g.Ratio = r
		out = append(out, g)
	}
	return out, nil
}

func (g Goal) String() string {
	op := "<="
	if g.AtLeast {
		op = ">="
	}
	return fmt.Sprintf("%s%s%gx", g.Metric, op, g.Ratio)
}

// metricOf returns a metric of a result's total.
func metricOf(r *Result, metric string) float64 {
	t := r.Total
	switch metric {
	case "ops":
		return t.OpsPerSec
	case "mean":
		return t.MeanUs
	case "p50":
		return t.P50Us
	case "p90":
		return t.P90Us
	case "p99":
		return t.P99Us
	case "p999":
		return t.P999Us
	case "max":
		return t.MaxUs
	}
	return 0
}

// Comparison pairs a candidate's and a baseline's result of one step.
type Comparison struct {
	Step                string
	Candidate, Baseline *Result // nil when missing
	Goals               []Goal
}

// Ratio returns candidate/baseline of a metric, 0 when either side is
// missing or the baseline is 0.
func (c Comparison) Ratio(metric string) float64 {
	if c.Candidate == nil || c.Baseline == nil {
		return 0
	}
	b := metricOf(c.Baseline, metric)
	if b == 0 {
		return 0
	}
	return metricOf(c.Candidate, metric) / b
}

// Verdict is PASS when every goal is met, MISS when one is not, "-" without
// goals and "n/a" when a side is missing.
func (c Comparison) Verdict() string {
	if c.Candidate == nil || c.Baseline == nil {
		return "n/a"
	}
	if len(c.Goals) == 0 {
		return "-"
	}
	for _, g := range c.Goals {
		r := c.Ratio(g.Metric)
		if (g.AtLeast && r < g.Ratio) || (!g.AtLeast && (r == 0 || r > g.Ratio)) {
			return "MISS"
		}
	}
	return "PASS"
}

// Compare groups results into comparisons: by their "step" label (the
// workload name when unlabelled), the candidate driver's result against the
// baseline driver's. Steps come in the order given, then in order of first
// appearance. A step with several results of one driver is an error.
func Compare(results []*Result, candidate, baseline string, goals map[string][]Goal, order []string) ([]Comparison, error) {
	byStep := map[string]*Comparison{}
	steps := slices.Clone(order)
	for _, r := range results {
		step := r.Labels["step"]
		if step == "" {
			step = r.Workload
		}
		c, ok := byStep[step]
		if !ok {
			c = &Comparison{Step: step, Goals: goals[step]}
			byStep[step] = c
			if !slices.Contains(steps, step) {
				steps = append(steps, step)
			}
		}
		var slot **Result
		switch r.Driver {
		case candidate:
			slot = &c.Candidate
		case baseline:
			slot = &c.Baseline
		default:
			return nil, fmt.Errorf("step %q: result of driver %q is neither the candidate %q nor the baseline %q", step, r.Driver, candidate, baseline)
		}
		if *slot != nil {
			return nil, fmt.Errorf("step %q: two results of driver %q", step, r.Driver)
		}
		*slot = r
	}
	var out []Comparison
	for _, s := range steps {
		if c, ok := byStep[s]; ok {
			out = append(out, *c)
		}
	}
	return out, nil
}

// WriteComparison writes comparisons as a table: throughput of both sides
// and their ratio, p50 and p99 of both, the goals, the measured ratios the
// goals name, and the verdict.
func WriteComparison(w io.Writer, cs []Comparison, candidate, baseline string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	C, B := strings.ToUpper(candidate), strings.ToUpper(baseline)
	fmt.Fprintf(tw, "STEP\t%s OPS/S\t%s OPS/S\tRATIO\t%s P50\t%s P99\t%s P50\t%s P99\tERRORS\tTARGET\tACTUAL\tRESULT\n", C, B, C, C, B, B)
	for _, c := range cs {
		cells := []string{c.Step}
		side := func(r *Result) (ops, p50, p99 string, errs int64) {
			if r == nil {
				return "-", "-", "-", 0
			}
			return strconv.FormatFloat(r.Total.OpsPerSec, 'f', 0, 64), FormatLatency(r.Total.P50Us), FormatLatency(r.Total.P99Us), r.Total.Errors
		}
		co, c50, c99, ce := side(c.Candidate)
		bo, b50, b99, be := side(c.Baseline)
		ratio := "-"
		if r := c.Ratio("ops"); r > 0 {
			ratio = fmt.Sprintf("%.2fx", r)
		}
		var target, actual []string
		for _, g := range c.Goals {
			target = append(target, g.String())
			actual = append(actual, fmt.Sprintf("%s %.2fx", g.Metric, c.Ratio(g.Metric)))
		}
		cells = append(cells, co, bo, ratio, c50, c99, b50, b99, fmt.Sprintf("%d/%d", ce, be),
			orDash(strings.Join(target, " ")), orDash(strings.Join(actual, " ")), c.Verdict())
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
