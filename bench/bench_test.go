package bench

import (
	"context"
	"testing"
)

// nopDB answers every call at once.
type nopDB struct{}

func (nopDB) Read(context.Context, []byte) error             { return nil }
func (nopDB) Put(context.Context, []byte, []byte) error      { return nil }
func (nopDB) Scan(context.Context, []byte, int) (int, error) { return 0, nil }
func (nopDB) Close() error                                   { return nil }

// BenchmarkWorkerStep measures the harness's own cost per operation
// (choosing the operation, key and value) for workload A's mix.
func BenchmarkWorkerStep(b *testing.B) {
	c := DefaultConfig()
	c.ReadProportion, c.UpdateProportion, c.RequestDistribution = 0.5, 0.5, DistZipfian
	w, err := NewWorkload(c)
	if err != nil {
		b.Fatal(err)
	}
	k := w.NewWorker(0)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := k.Step(ctx, nopDB{}, PhaseRun); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecord measures recording one operation's outcome.
func BenchmarkRecord(b *testing.B) {
	r := newRecorder(4)
	b.ReportAllocs()
	for b.Loop() {
		r.record(1, OpRead, 1234567, nil, true)
	}
}
