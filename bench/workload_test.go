package bench

import (
	"context"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func loadWorkloadFile(t *testing.T, name string, extra Properties) Config {
	t.Helper()
	p := Properties{}
	if err := LoadPropertiesFile(filepath.Join("workloads", name), p); err != nil {
		t.Fatal(err)
	}
	for k, v := range extra {
		p[k] = v
	}
	c, unknown, err := ParseConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(unknown) > 0 {
		t.Fatalf("%s: unknown properties %v", name, unknown)
	}
	return c
}

// load inserts the workload's records into db with one worker.
func load(t *testing.T, w *Workload, db DB) {
	t.Helper()
	k := w.NewWorker(0)
	for {
		_, done, err := k.Step(context.Background(), db, PhaseLoad)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			return
		}
	}
}

func TestShippedWorkloadsOpMix(t *testing.T) {
	for _, tc := range []struct {
		file string
		want map[Op]float64
	}{
		{"workloada", map[Op]float64{OpRead: 0.5, OpUpdate: 0.5}},
		{"workloadb", map[Op]float64{OpRead: 0.95, OpUpdate: 0.05}},
		{"workloadc", map[Op]float64{OpRead: 1}},
		{"workloadd", map[Op]float64{OpRead: 0.95, OpInsert: 0.05}},
		{"workloade", map[Op]float64{OpScan: 0.95, OpInsert: 0.05}},
		{"workloadf", map[Op]float64{OpRead: 0.5, OpReadModifyWrite: 0.5}},
		{"workload_writeonly", map[Op]float64{OpUpdate: 1}},
		{"workload_readonly", map[Op]float64{OpRead: 1}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			const n = 20000
			cfg := loadWorkloadFile(t, tc.file, Properties{"seed": "42"})
			w, err := NewWorkload(cfg)
			if err != nil {
				t.Fatal(err)
			}
			db := newMemDB()
			load(t, w, db)
			if len(db.data) != int(cfg.RecordCount) {
				t.Fatalf("loaded %d records, want %d", len(db.data), cfg.RecordCount)
			}
			counts := map[Op]int{}
			k := w.NewWorker(1)
			for range n {
				op, _, err := k.Step(context.Background(), db, PhaseRun)
				if err != nil {
					t.Fatalf("%s: %v", op, err)
				}
				counts[op]++
			}
			for op := range numOps {
				got := float64(counts[op]) / n
				if math.Abs(got-tc.want[op]) > 0.02 {
					t.Errorf("%s: %.3f of operations, want %.2f", op, got, tc.want[op])
				}
			}
		})
	}
}

func TestLoadInsertsEveryRecordOnce(t *testing.T) {
	for _, order := range []string{InsertHashed, InsertOrdered} {
		c := DefaultConfig()
		c.RecordCount, c.InsertStart, c.InsertCount, c.InsertOrder = 5000, 1000, 4000, order
		w, err := NewWorkload(c)
		if err != nil {
			t.Fatal(err)
		}
		db := newMemDB()
		load(t, w, db)
		if len(db.data) != 4000 || db.calls != 4000 {
			t.Fatalf("%s: %d keys from %d puts, want 4000 distinct keys", order, len(db.data), db.calls)
		}
		for k, v := range db.data {
			if len(k) != 16 || !strings.HasPrefix(k, "user") || len(v) != 256 {
				t.Fatalf("%s: key %q (%d bytes), value of %d bytes; want 16-byte user keys, 256-byte values", order, k, len(k), len(v))
			}
		}
		if order == InsertOrdered {
			if _, ok := db.data["user000000001000"]; !ok {
				t.Fatalf("ordered: no key user000000001000")
			}
		}
	}
}

func TestKeyFormat(t *testing.T) {
	for _, tc := range []struct {
		f    keyFormat
		n    int64
		want string
	}{
		{keyFormat{prefix: "user", length: 16}, 42, "user000000000042"},
		{keyFormat{prefix: "user"}, 42, "user42"},
		{keyFormat{prefix: "user", hashed: true}, 42, "user" + itoa(fnvHash64(42))},
		{keyFormat{prefix: "user", length: 16, hashed: true}, 42, "user" + lastDigits(itoa(fnvHash64(42)), 12)},
		{keyFormat{prefix: "user", length: 6}, 12345, "user12345"}, // ordered keys keep every digit
	} {
		if got := string(tc.f.appendKey(nil, tc.n)); got != tc.want {
			t.Errorf("%+v key(%d) = %q, want %q", tc.f, tc.n, got, tc.want)
		}
	}
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

func lastDigits(s string, n int) string {
	if len(s) <= n {
		return strings.Repeat("0", n-len(s)) + s
	}
	return s[len(s)-n:]
}

func TestRunPhaseReadsOnlyAcknowledgedInserts(t *testing.T) {
	// Workload D reads the latest records: it must never pick one whose
	// insert has not finished, so every read finds its key.
	cfg := loadWorkloadFile(t, "workloadd", Properties{"seed": "7"})
	w, err := NewWorkload(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := newMemDB()
	load(t, w, db)
	k := w.NewWorker(3)
	for range 5000 {
		if op, _, err := k.Step(context.Background(), db, PhaseRun); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
}
