package raftfsm

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

// syncCounter counts the calls of a DB's Busy function: Pebble makes one
// after every WAL sync, once the sync's waiters are released (so a call can
// land just after the append it covered returns).
type syncCounter struct {
	n       atomic.Int64
	changed chan struct{}
}

func (c *syncCounter) Load() int64 { return c.n.Load() }

// waitAtLeast waits until n calls were made.
func (c *syncCounter) waitAtLeast(n int64) {
	for c.n.Load() < n {
		<-c.changed
	}
}

// openPaced opens a DB whose Busy function reports busy and counts its calls.
func openPaced(t *testing.T, window time.Duration, busy bool) (*pebble.DB, *syncCounter) {
	t.Helper()
	syncs := &syncCounter{changed: make(chan struct{}, 1)}
	db, err := OpenDB(t.TempDir(), DBOptions{FS: vfs.Default, CacheSize: 8 << 20, MemTableSize: 4 << 20, Logger: quietLogger(),
		GroupCommitWindow: window,
		Busy: func() bool {
			syncs.n.Add(1)
			select {
			case syncs.changed <- struct{}{}:
			default:
			}
			return busy
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeQuietly(db) })
	return db, syncs
}

func appendOne(t *testing.T, s *LogStore, index uint64) {
	t.Helper()
	if err := s.StoreLog(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: []byte("x")}); err != nil {
		t.Error(err)
	}
}

// While the node is busy, the synced appends of many shards that arrive
// within the window after a sync share the next fsync.
func TestGroupCommitBusySharesOneSync(t *testing.T) {
	const shards = 16
	// A long window, so that every append below is issued well within it
	// even on a loaded machine.
	db, syncs := openPaced(t, time.Second, true)
	stores := make([]*LogStore, shards)
	for i := range stores {
		s, err := NewLogStore(db, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	start := syncs.Load()
	appendOne(t, stores[0], 1) // this sync opens the window
	syncs.waitAtLeast(start + 1)
	before := syncs.Load()

	var wg sync.WaitGroup
	for _, s := range stores {
		wg.Go(func() { appendOne(t, s, 2) })
	}
	wg.Wait()
	syncs.waitAtLeast(before + 1)
	if got := syncs.Load() - before; got != 1 {
		t.Fatalf("%d synced appends of %d shards took %d syncs, want 1", shards, shards, got)
	}
	for i, s := range stores {
		if last, _ := s.LastIndex(); last != 2 {
			t.Fatalf("shard %d: last index %d after the shared sync, want 2", i+1, last)
		}
	}
}

// While the node is not busy, every sync goes at once: with an hour's
// window, sequential appends would stall if any sync waited for it. (Pebble
// may fold an append into a sync it makes for itself, so the count of syncs
// is a lower bound on the appends, not equal to them.)
func TestGroupCommitIdleSyncsAtOnce(t *testing.T) {
	db, syncs := openPaced(t, time.Hour, false)
	s, err := NewLogStore(db, 1)
	if err != nil {
		t.Fatal(err)
	}
	before := syncs.Load()
	for i := uint64(1); i <= 20; i++ {
		appendOne(t, s, i) // an hour's window would stall here if it applied
	}
	if got := syncs.Load() - before; got < 10 {
		t.Fatalf("20 sequential appends took %d syncs, want about one each", got)
	}
}
