package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// RunConfig says how to run one phase of a workload. Clients, the target
// rate, the warm-up, the duration and the operation count come from the
// workload's Config.
type RunConfig struct {
	// Phase is the load or the run phase.
	Phase Phase
	// Workload generates the operations.
	Workload *Workload
	// DBs are the client-library instances; worker i uses DBs[i%len(DBs)].
	DBs []DB
	// Driver, Workload name, Labels and Settings are copied into the Result.
	Driver       string
	WorkloadName string
	Labels       map[string]string
	Settings     map[string]string
	// OpTimeout bounds each operation; 0 means no bound. Default 0. Once
	// the phase should end, Run waits OpTimeout plus a second (30s
	// without an OpTimeout) for operations in flight, then gives up on
	// workers whose DB ignores its context (Result.StuckWorkers).
	OpTimeout time.Duration
	// StatusInterval is how often OnStatus is called, rounded up to whole
	// seconds. Default 5s.
	StatusInterval time.Duration
	// OnStatus, if set, receives a status every StatusInterval.
	OnStatus func(Status)
	// OnProgress, if set, is called every second.
	OnProgress func(Progress)
}

// Status summarises the last status interval.
type Status struct {
	Phase Phase
	// Elapsed is the time since the phase started, warm-up included.
	Elapsed time.Duration
	// Warmup is true while the warm-up runs (nothing is measured yet).
	Warmup bool
	// Done counts every finished operation since the start.
	Done int64
	// Interval is the time the interval covered.
	Interval time.Duration
	// IntervalDone counts the operations that finished in the interval.
	IntervalDone int64
	// Ops are the measured operations of the interval, per type.
	Ops []StatusOp
}

// StatusOp is one operation type's share of a status interval.
type StatusOp struct {
	Op     string
	Count  int64
	Errors int64
	P99    time.Duration
}

// String formats the status as one line.
func (s Status) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %4.0fs %d ops, %.1f ops/s", s.Phase, s.Elapsed.Seconds(), s.Done,
		float64(s.IntervalDone)/max(s.Interval.Seconds(), 1e-9))
	if s.Warmup {
		b.WriteString(" (warm-up)")
	}
	for _, o := range s.Ops {
		fmt.Fprintf(&b, "; %s count=%d p99=%s", o.Op, o.Count, FormatLatency(float64(o.P99.Microseconds())))
		if o.Errors > 0 {
			fmt.Fprintf(&b, " errors=%d", o.Errors)
		}
	}
	return b.String()
}

// Progress is reported every second.
type Progress struct {
	Elapsed time.Duration
	// Done counts every finished operation, Measured only those after the
	// warm-up.
	Done, Measured int64
}

// ErrNoLimit is returned for a run phase with neither an operation count
// nor a maximum execution time.
var ErrNoLimit = errors.New("bench: the run phase needs operationcount or maxexecutiontime")

// Run runs one phase and returns its measurements. Cancelling ctx stops the
// workers; the result then covers what was measured and is marked
// Interrupted.
func Run(ctx context.Context, rc RunConfig) (*Result, error) {
	if rc.Workload == nil || len(rc.DBs) == 0 {
		return nil, errors.New("bench: Run needs a workload and at least one DB")
	}
	cfg := rc.Workload.Config()
	if rc.Phase == PhaseRun && cfg.OperationCount == 0 && cfg.MaxExecutionTime == 0 {
		return nil, ErrNoLimit
	}
	if rc.StatusInterval <= 0 {
		rc.StatusInterval = 5 * time.Second
	}
	r := &runner{rc: rc, cfg: cfg, rec: newRecorder(min(cfg.ThreadCount, 16))}
	if rc.Phase == PhaseRun {
		r.opLimit = cfg.OperationCount
	}
	r.lastEnd = make([]atomic.Int64, cfg.ThreadCount)
	r.start = time.Now()
	r.measureFrom = r.start.Add(cfg.WarmupTime)
	if cfg.MaxExecutionTime > 0 {
		r.deadline = r.measureFrom.Add(cfg.MaxExecutionTime)
	}

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for id := range cfg.ThreadCount {
		wg.Go(func() {
			defer r.exited.Add(1)
			r.worker(wctx, id)
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	stuck := r.collect(wctx, finished)
	res := r.result(ctx.Err() != nil)
	res.StuckWorkers = stuck
	return res, nil
}

type runner struct {
	rc          RunConfig
	cfg         Config
	rec         *recorder
	start       time.Time
	measureFrom time.Time
	deadline    time.Time // zero: none
	opLimit     int64     // 0: none
	claimed     atomic.Int64
	exited      atomic.Int64   // workers that have returned
	lastEnd     []atomic.Int64 // per worker: end of its last measured operation (Unix ns)

	// Owned by the collector.
	total    *opSet
	timeline []Sample
}

// worker runs operations until the phase ends. With a target rate each
// worker has a fixed schedule of intended start times (its share of the
// rate, offset from the other workers'); an operation's latency counts from
// its intended start, so a stall delays and charges every operation
// scheduled behind it (no coordinated omission).
func (r *runner) worker(ctx context.Context, id int) {
	wk := r.rc.Workload.NewWorker(id)
	db := r.rc.DBs[id%len(r.rc.DBs)]
	clients := r.cfg.ThreadCount
	var interval time.Duration
	var next time.Time
	if r.cfg.Target > 0 {
		interval = time.Duration(float64(time.Second) * float64(clients) / r.cfg.Target)
		next = r.start.Add(interval * time.Duration(id) / time.Duration(clients))
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		var intended time.Time
		if interval > 0 {
			intended, next = next, next.Add(interval)
			if d := time.Until(intended); d > 0 {
				timer.Reset(d)
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
			}
		} else {
			intended = time.Now()
		}
		if ctx.Err() != nil || (!r.deadline.IsZero() && !intended.Before(r.deadline)) {
			return
		}
		measured := !intended.Before(r.measureFrom)
		if measured && r.opLimit > 0 && r.claimed.Add(1) > r.opLimit {
			return
		}
		op, done, err := r.step(ctx, wk, db)
		end := time.Now()
		if done || (err != nil && ctx.Err() != nil) {
			return
		}
		r.rec.record(id, op, end.Sub(intended), err, measured)
		if measured {
			r.lastEnd[id].Store(end.UnixNano())
		}
	}
}

func (r *runner) step(ctx context.Context, wk *Worker, db DB) (Op, bool, error) {
	if r.rc.OpTimeout <= 0 {
		return wk.Step(ctx, db, r.rc.Phase)
	}
	octx, cancel := context.WithTimeout(ctx, r.rc.OpTimeout)
	defer cancel()
	return wk.Step(octx, db, r.rc.Phase)
}

// collect drains the recorder every second until the workers finish: one
// timeline sample per measured second, a status every StatusInterval. It
// returns the number of workers it gave up on: those still in an operation
// long after the phase should have ended.
func (r *runner) collect(ctx context.Context, finished <-chan struct{}) (stuck int) {
	r.total = newOpSet()
	sec, spare, status := newOpSet(), newOpSet(), newOpSet()
	statusEvery := max(int((r.rc.StatusInterval+time.Second-1)/time.Second), 1)
	var done, statusDone int64
	lastStatus, reported := r.start, false
	grace := 30 * time.Second
	if r.rc.OpTimeout > 0 {
		grace = r.rc.OpTimeout + time.Second
	}
	var stopping time.Time // when the phase should have begun to end
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for tick := 1; ; tick++ {
		var now time.Time
		final := false
		select {
		case now = <-ticker.C:
		case <-finished:
			now, final = time.Now(), true
		}
		if stopping.IsZero() && (ctx.Err() != nil || r.exited.Load() > 0 || (!r.deadline.IsZero() && now.After(r.deadline))) {
			stopping = now
		}
		if !final && !stopping.IsZero() && now.Sub(stopping) > grace {
			stuck = r.cfg.ThreadCount - int(r.exited.Load())
			final = true
		}
		spare = r.rec.drain(sec, spare)
		done += sec.done()
		if now.After(r.measureFrom) {
			r.addSample(now, sec)
		}
		r.total.add(sec)
		status.add(sec)
		sec.reset()
		if r.rc.OnProgress != nil {
			r.rc.OnProgress(Progress{Elapsed: now.Sub(r.start), Done: done, Measured: r.measured()})
		}
		// The last status covers the rest of the run, unless a status
		// has just been reported.
		if r.rc.OnStatus != nil && (tick%statusEvery == 0 || (final && (!reported || now.Sub(lastStatus) >= time.Second))) {
			r.rc.OnStatus(r.status(now, lastStatus, done, done-statusDone, status))
			lastStatus, statusDone, reported = now, done, true
			status.reset()
		}
		if final {
			return stuck
		}
	}
}

func (r *runner) measured() int64 {
	var n int64
	for _, c := range r.total.counts {
		n += c.ok + c.notFound + c.errors
	}
	return n
}

func (r *runner) addSample(now time.Time, sec *opSet) {
	s := Sample{Sec: now.Sub(r.measureFrom).Round(time.Millisecond).Seconds()}
	measured := false
	for op := range numOps {
		c, h := sec.counts[op], sec.hist[op]
		if c.ok+c.notFound+c.errors == 0 {
			continue
		}
		measured = true
		so := SampleOp{Op: op.String(), Count: c.ok + c.notFound, Errors: c.errors}
		if h.TotalCount() > 0 {
			so.P50Us, so.P99Us = float64(h.ValueAtPercentile(50)), float64(h.ValueAtPercentile(99))
		}
		s.Ops = append(s.Ops, so)
	}
	if measured || len(r.timeline) > 0 {
		r.timeline = append(r.timeline, s)
	}
}

func (r *runner) status(now, last time.Time, done, intervalDone int64, s *opSet) Status {
	st := Status{Phase: r.rc.Phase, Elapsed: now.Sub(r.start), Warmup: now.Before(r.measureFrom), Done: done,
		Interval: now.Sub(last), IntervalDone: intervalDone}
	for op := range numOps {
		c, h := s.counts[op], s.hist[op]
		if c.ok+c.notFound+c.errors == 0 {
			continue
		}
		st.Ops = append(st.Ops, StatusOp{Op: op.String(), Count: c.ok + c.notFound, Errors: c.errors,
			P99: time.Duration(h.ValueAtPercentile(99)) * time.Microsecond})
	}
	return st
}

// result builds the Result once the workers and the collector are done.
func (r *runner) result(interrupted bool) *Result {
	var end time.Time
	for i := range r.lastEnd {
		if ns := r.lastEnd[i].Load(); ns > 0 && time.Unix(0, ns).After(end) {
			end = time.Unix(0, ns)
		}
	}
	dur := max(end.Sub(r.measureFrom), 0)
	res := &Result{
		Driver: r.rc.Driver, Phase: r.rc.Phase.String(), Workload: r.rc.WorkloadName,
		Labels: r.rc.Labels, Properties: r.cfg.Properties(), Settings: r.rc.Settings,
		Clients: r.cfg.ThreadCount, Conns: len(r.rc.DBs), TargetOpsPerSec: r.cfg.Target,
		Start: r.start, WarmupSec: r.cfg.WarmupTime.Seconds(), DurationSec: dur.Seconds(),
		Interrupted: interrupted, Timeline: r.timeline,
	}
	all := newHistogram()
	var allCounts opCounts
	for op := range numOps {
		c, h := r.total.counts[op], r.total.hist[op]
		if c.ok+c.notFound+c.errors == 0 {
			continue
		}
		res.Ops = append(res.Ops, summarize(op.String(), h, c, dur))
		all.Merge(h)
		allCounts.add(c)
	}
	res.Total = summarize("TOTAL", all, allCounts, dur)
	return res
}
