package bench

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Result is the outcome of one phase: what ran, and per operation type how
// many operations completed and how long they took. It is what --json writes
// and what compare reads.
type Result struct {
	// Driver names the store's client ("clover", "etcd").
	Driver string `json:"driver"`
	// Phase is "load" or "run".
	Phase string `json:"phase"`
	// Workload names the workload (its properties file, or "custom").
	Workload string `json:"workload"`
	// Labels are the caller's key=value tags (compare groups by "step").
	Labels map[string]string `json:"labels,omitempty"`
	// Properties are every workload property in effect.
	Properties Properties `json:"properties"`
	// Settings are the driver's settings (read consistency, connections...).
	Settings map[string]string `json:"settings,omitempty"`
	Clients  int               `json:"clients"`
	Conns    int               `json:"conns"`
	// TargetOpsPerSec is the total target rate; 0 ran unthrottled.
	TargetOpsPerSec float64 `json:"target_ops_per_sec"`
	// Start is when the phase started (warm-up included).
	Start time.Time `json:"start"`
	// WarmupSec is the warm-up that was excluded from the measurements.
	WarmupSec float64 `json:"warmup_sec"`
	// DurationSec is the measured time: from the end of the warm-up to the
	// end of the last measured operation.
	DurationSec float64 `json:"duration_sec"`
	// Interrupted is true when the phase was cancelled before its end.
	Interrupted bool `json:"interrupted,omitempty"`
	// StuckWorkers counts workers whose operation had not returned long
	// after the phase should have ended (a DB ignoring its context); the
	// result leaves those operations out.
	StuckWorkers int `json:"stuck_workers,omitempty"`
	// Total sums all operation types.
	Total OpSummary `json:"total"`
	// Ops has one entry per operation type that ran, in a fixed order.
	Ops []OpSummary `json:"ops"`
	// Timeline has one sample per second of the measured time.
	Timeline []Sample `json:"timeline"`
}

// OpSummary describes the measured operations of one type. Latencies are in
// microseconds. Count includes not-found reads; failed operations are counted
// in Errors only and have no latency recorded.
type OpSummary struct {
	Op        string  `json:"op"`
	Count     int64   `json:"count"`
	Errors    int64   `json:"errors"`
	NotFound  int64   `json:"not_found"`
	OpsPerSec float64 `json:"ops_per_sec"`
	MeanUs    float64 `json:"mean_us"`
	MinUs     float64 `json:"min_us"`
	P50Us     float64 `json:"p50_us"`
	P90Us     float64 `json:"p90_us"`
	P99Us     float64 `json:"p99_us"`
	P999Us    float64 `json:"p999_us"`
	MaxUs     float64 `json:"max_us"`
	// Percentiles is the latency distribution, for plots.
	Percentiles []PercentilePoint `json:"percentiles,omitempty"`
}

// PercentilePoint is the latency at a percentile (0-100).
type PercentilePoint struct {
	Percentile float64 `json:"p"`
	LatencyUs  float64 `json:"us"`
}

// Sample is one second of the measured time.
type Sample struct {
	// Sec is the end of the second, counted from the end of the warm-up.
	Sec float64 `json:"t"`
	// Ops is per operation type (only those that ran).
	Ops []SampleOp `json:"ops"`
}

// SampleOp is one operation type's second.
type SampleOp struct {
	Op     string  `json:"op"`
	Count  int64   `json:"count"`
	Errors int64   `json:"errors"`
	P50Us  float64 `json:"p50_us"`
	P99Us  float64 `json:"p99_us"`
}

// TotalOps sums the sample's operation counts.
func (s Sample) TotalOps() int64 {
	var n int64
	for _, o := range s.Ops {
		n += o.Count
	}
	return n
}

// Op returns the summary of the named operation type, if it ran.
func (r *Result) Op(name string) (OpSummary, bool) {
	for _, o := range r.Ops {
		if o.Op == name {
			return o, true
		}
	}
	return OpSummary{}, false
}

// distributionPercentiles are the points of OpSummary.Percentiles.
var distributionPercentiles = []float64{0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 97.5,
	99, 99.5, 99.75, 99.9, 99.95, 99.99, 99.995, 99.999, 100}

// summarize describes one histogram and its counts over a measured duration.
func summarize(name string, h *hdrhistogram.Histogram, c opCounts, dur time.Duration) OpSummary {
	s := OpSummary{Op: name, Count: c.ok + c.notFound, Errors: c.errors, NotFound: c.notFound}
	if dur > 0 {
		s.OpsPerSec = float64(s.Count) / dur.Seconds()
	}
	if h.TotalCount() == 0 {
		return s
	}
	s.MeanUs = h.Mean()
	s.MinUs = float64(h.Min())
	s.MaxUs = float64(h.Max())
	q := h.ValueAtPercentiles(append([]float64{50, 90, 99, 99.9}, distributionPercentiles...))
	s.P50Us, s.P90Us, s.P99Us, s.P999Us = float64(q[50]), float64(q[90]), float64(q[99]), float64(q[99.9])
	for _, p := range distributionPercentiles {
		v := float64(q[p])
		switch p {
		case 0:
			v = s.MinUs
		case 100:
			v = s.MaxUs
		}
		s.Percentiles = append(s.Percentiles, PercentilePoint{Percentile: p, LatencyUs: v})
	}
	return s
}
