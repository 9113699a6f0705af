package bench

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// hookDB is a memDB that calls before on every call, with the call's number
// (from 1), before doing it; a non-nil error fails the call.
type hookDB struct {
	*memDB
	mu     sync.Mutex
	n      int
	before func(ctx context.Context, n int) error
}

func (h *hookDB) hook(ctx context.Context) error {
	h.mu.Lock()
	h.n++
	n := h.n
	h.mu.Unlock()
	return h.before(ctx, n)
}

func (h *hookDB) Read(ctx context.Context, key []byte) error {
	if err := h.hook(ctx); err != nil {
		return err
	}
	return h.memDB.Read(ctx, key)
}

func (h *hookDB) Put(ctx context.Context, key, value []byte) error {
	if err := h.hook(ctx); err != nil {
		return err
	}
	return h.memDB.Put(ctx, key, value)
}

func writeOnly(t *testing.T, extra Properties) *Workload {
	t.Helper()
	p := Properties{"recordcount": "100", "readproportion": "0", "updateproportion": "1", "seed": "1"}
	for k, v := range extra {
		p[k] = v
	}
	c, _, err := ParseConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWorkload(c)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func run(t *testing.T, w *Workload, dbs ...DB) *Result {
	t.Helper()
	res, err := Run(context.Background(), RunConfig{Phase: PhaseRun, Workload: w, DBs: dbs})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestCoordinatedOmissionCorrection(t *testing.T) {
	// One client at 1000 ops/s (an operation intended every 1ms); the 50th
	// operation stalls for 100ms. Operations intended during the stall start
	// only after it: measured from their intended start, the j-th of them
	// waited at least 100ms - j*1ms. So at least 50 of the 300 operations
	// (all intended within the stall's first 50ms) take 50ms or more, which
	// puts p90 at 50ms or more, whatever the machine's speed.
	const stall = 100 * time.Millisecond
	db := &hookDB{memDB: newMemDB(), before: func(ctx context.Context, n int) error {
		if n == 50 {
			// The stall is the fault under test: the operation takes
			// this long, whatever else happens.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(stall):
			}
		}
		return nil
	}}
	res := run(t, writeOnly(t, Properties{"operationcount": "300", "target": "1000"}), db)
	if res.Total.Count != 300 {
		t.Fatalf("count %d, want 300", res.Total.Count)
	}
	if res.Total.MaxUs < float64(stall.Microseconds()) {
		t.Errorf("max %vµs, want at least the stall (%v)", res.Total.MaxUs, stall)
	}
	if res.Total.P90Us < float64((stall / 2).Microseconds()) {
		t.Errorf("p90 %vµs: the operations queued behind the stall were not charged for it (want >= %v)", res.Total.P90Us, stall/2)
	}
}

func TestWarmupExcluded(t *testing.T) {
	const warmup = 50 * time.Millisecond
	var start time.Time
	var warmupCalls int
	db := &hookDB{memDB: newMemDB(), before: func(context.Context, int) error {
		if time.Since(start) < warmup {
			warmupCalls++ // one client: no race
		}
		return nil
	}}
	w := writeOnly(t, Properties{"operationcount": "200", "warmuptime": warmup.String()})
	start = time.Now()
	res := run(t, w, db)
	if res.Total.Count != 200 {
		t.Fatalf("measured %d operations, want operationcount 200", res.Total.Count)
	}
	// Every operation that started in the warm-up ran but was not counted.
	if db.n < 200+warmupCalls {
		t.Fatalf("%d calls, %d of them in the warm-up: want 200 measured ones besides", db.n, warmupCalls)
	}
	if res.WarmupSec != warmup.Seconds() {
		t.Fatalf("warm-up %vs recorded, want %v", res.WarmupSec, warmup.Seconds())
	}
}

func TestTargetScheduleWithDurationLimit(t *testing.T) {
	// Four clients share 1000 ops/s over 100ms: operations are intended
	// every 1ms, and exactly those intended before the deadline run.
	db := newMemDB()
	res := run(t, writeOnly(t, Properties{"operationcount": "0", "target": "1000", "threadcount": "4", "maxexecutiontime": "100ms"}), db)
	if res.Total.Count != 100 || db.calls != 100 {
		t.Fatalf("count %d from %d calls, want 100", res.Total.Count, db.calls)
	}
}

func TestErrorsAndNotFoundCounted(t *testing.T) {
	boom := errors.New("boom")
	db := &hookDB{memDB: newMemDB(), before: func(_ context.Context, n int) error {
		if n%4 == 0 {
			return boom
		}
		return nil
	}}
	res := run(t, writeOnly(t, Properties{"operationcount": "400"}), db)
	if res.Total.Errors != 100 || res.Total.Count != 300 {
		t.Fatalf("errors %d, count %d; want 100 and 300", res.Total.Errors, res.Total.Count)
	}
	// Reads of records never loaded are not found: counted, with latency, not errors.
	c := DefaultConfig()
	c.ReadProportion, c.UpdateProportion, c.OperationCount = 1, 0, 50
	w, err := NewWorkload(c)
	if err != nil {
		t.Fatal(err)
	}
	res = run(t, w, newMemDB())
	read, ok := res.Op("READ")
	if !ok || read.Count != 50 || read.NotFound != 50 || read.Errors != 0 || read.P50Us == 0 {
		t.Fatalf("READ summary %+v: want 50 not-found reads with latencies", read)
	}
}

func TestRunSharesDBsRoundRobin(t *testing.T) {
	// Four clients on a fixed schedule do 25 operations each; clients 0
	// and 2 use the first DB, 1 and 3 the second.
	a, b := newMemDB(), newMemDB()
	run(t, writeOnly(t, Properties{"operationcount": "0", "target": "1000", "threadcount": "4", "maxexecutiontime": "100ms"}), a, b)
	if a.calls != 50 || b.calls != 50 {
		t.Fatalf("calls %d and %d, want 50 each", a.calls, b.calls)
	}
}

func TestStatusReported(t *testing.T) {
	var statuses []Status
	w := writeOnly(t, Properties{"operationcount": "100"})
	_, err := Run(context.Background(), RunConfig{Phase: PhaseRun, Workload: w, DBs: []DB{newMemDB()},
		OnStatus: func(s Status) { statuses = append(statuses, s) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(statuses) == 0 {
		t.Fatal("no status reported")
	}
	last := statuses[len(statuses)-1]
	if last.Done != 100 || !strings.Contains(last.String(), "UPDATE count=") {
		t.Fatalf("last status %q (done %d)", last, last.Done)
	}
}

func TestRunNeedsALimit(t *testing.T) {
	w := writeOnly(t, Properties{"operationcount": "0"})
	if _, err := Run(context.Background(), RunConfig{Phase: PhaseRun, Workload: w, DBs: []DB{newMemDB()}}); !errors.Is(err, ErrNoLimit) {
		t.Fatalf("got %v, want ErrNoLimit", err)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	db := &hookDB{memDB: newMemDB(), before: func(_ context.Context, n int) error {
		if n == 100 {
			cancel()
		}
		return nil
	}}
	w := writeOnly(t, Properties{"operationcount": "0", "maxexecutiontime": "1h"})
	res, err := Run(ctx, RunConfig{Phase: PhaseRun, Workload: w, DBs: []DB{db}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Total.Count < 99 {
		t.Fatalf("interrupted=%v count=%d: want an interrupted result with the operations done", res.Interrupted, res.Total.Count)
	}
}

func TestSummarize(t *testing.T) {
	h := newHistogram()
	for v := int64(1); v <= 1000; v++ {
		recordLatency(h, time.Duration(v)*time.Microsecond)
	}
	s := summarize("READ", h, opCounts{ok: 990, notFound: 10, errors: 3}, 2*time.Second)
	if s.Count != 1000 || s.Errors != 3 || s.NotFound != 10 || s.OpsPerSec != 500 {
		t.Fatalf("counts %+v", s)
	}
	near := func(name string, got, want float64) {
		if got < want*0.999 || got > want*1.001 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	near("mean", s.MeanUs, 500.5)
	near("p50", s.P50Us, 500)
	near("p90", s.P90Us, 900)
	near("p99", s.P99Us, 990)
	near("p99.9", s.P999Us, 999)
	near("max", s.MaxUs, 1000)
	near("min", s.MinUs, 1)
	if n := len(s.Percentiles); n != len(distributionPercentiles) || s.Percentiles[n-1].LatencyUs != s.MaxUs {
		t.Fatalf("percentile curve %+v", s.Percentiles)
	}
	// Out-of-range latencies are clamped, not dropped.
	recordLatency(h, 24*time.Hour)
	if h.TotalCount() != 1001 {
		t.Fatalf("a day-long latency was dropped")
	}
}

func TestRunGivesUpOnStuckWorkers(t *testing.T) {
	// The 10th call ignores its context and never returns (until the test
	// ends): Run must still end, and say so.
	release := make(chan struct{})
	defer close(release)
	db := &hookDB{memDB: newMemDB(), before: func(_ context.Context, n int) error {
		if n == 10 {
			<-release
		}
		return nil
	}}
	w := writeOnly(t, Properties{"operationcount": "100", "threadcount": "2"})
	res, err := Run(context.Background(), RunConfig{Phase: PhaseRun, Workload: w, DBs: []DB{db}, OpTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.StuckWorkers != 1 || res.Total.Count != 99 {
		t.Fatalf("stuck %d, count %d; want 1 stuck worker and the other 99 operations", res.StuckWorkers, res.Total.Count)
	}
}
