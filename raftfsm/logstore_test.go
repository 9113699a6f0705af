package raftfsm

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

func mustLogStore(t testing.TB, db *pebble.DB, shard uint64) *LogStore {
	t.Helper()
	s, err := NewLogStore(db, shard)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testLog(index, term uint64) *raft.Log {
	l := &raft.Log{Index: index, Term: term, Type: raft.LogCommand, Data: fmt.Appendf(nil, "data-%d", index)}
	switch index % 3 {
	case 0:
		l.Type, l.Data = raft.LogNoop, nil
	case 1:
		l.Extensions = []byte("ext")
		l.AppendedAt = time.Unix(1700000000, int64(index))
	}
	return l
}

func logsBetween(lo, hi, term uint64) []*raft.Log {
	var logs []*raft.Log
	for i := lo; i <= hi; i++ {
		logs = append(logs, testLog(i, term))
	}
	return logs
}

func sameLog(a, b *raft.Log) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type &&
		bytes.Equal(a.Data, b.Data) && bytes.Equal(a.Extensions, b.Extensions) &&
		a.AppendedAt.Equal(b.AppendedAt) && a.AppendedAt.IsZero() == b.AppendedAt.IsZero()
}

// expectLogs checks bounds and that exactly the indexes in want (with the
// given terms) are readable in [lo, hi].
func expectLogs(t *testing.T, s *LogStore, first, last uint64, want map[uint64]uint64) {
	t.Helper()
	if f, _ := s.FirstIndex(); f != first {
		t.Fatalf("FirstIndex %d, want %d", f, first)
	}
	if l, _ := s.LastIndex(); l != last {
		t.Fatalf("LastIndex %d, want %d", l, last)
	}
	for i := uint64(0); i <= last+2; i++ {
		var got raft.Log
		err := s.GetLog(i, &got)
		term, ok := want[i]
		switch {
		case !ok && !errors.Is(err, raft.ErrLogNotFound):
			t.Fatalf("GetLog(%d): err = %v, want ErrLogNotFound", i, err)
		case ok && err != nil:
			t.Fatalf("GetLog(%d): %v", i, err)
		case ok && !sameLog(&got, testLog(i, term)):
			t.Fatalf("GetLog(%d) = %+v, want %+v", i, got, testLog(i, term))
		}
	}
}

func span(lo, hi, term uint64, m map[uint64]uint64) map[uint64]uint64 {
	if m == nil {
		m = map[uint64]uint64{}
	}
	for i := lo; i <= hi; i++ {
		m[i] = term
	}
	return m
}

func TestLogStoreContract(t *testing.T) {
	db, fs := openMem(t, nil)
	s := mustLogStore(t, db, 1)
	reopen := func() {
		t.Helper()
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db, _ = openMem(t, fs)
		s = mustLogStore(t, db, 1)
	}
	expectLogs(t, s, 0, 0, nil)

	if err := s.StoreLogs(logsBetween(1, 10, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLog(testLog(12, 2)); err != nil { // a gap at 11
		t.Fatal(err)
	}
	want := span(1, 10, 1, nil)
	want[12] = 2
	expectLogs(t, s, 1, 12, want)
	reopen()
	expectLogs(t, s, 1, 12, want)

	// Compaction from the front, as after a snapshot.
	if err := s.DeleteRange(1, 3); err != nil {
		t.Fatal(err)
	}
	want = span(4, 10, 1, nil)
	want[12] = 2
	expectLogs(t, s, 4, 12, want)

	// Truncation of a conflicting suffix, then new entries, as a follower does.
	if err := s.DeleteRange(8, 12); err != nil {
		t.Fatal(err)
	}
	expectLogs(t, s, 4, 7, span(4, 7, 1, nil))
	if err := s.StoreLogs(logsBetween(8, 9, 3)); err != nil {
		t.Fatal(err)
	}
	want = span(8, 9, 3, span(4, 7, 1, nil))
	expectLogs(t, s, 4, 9, want)
	reopen()
	expectLogs(t, s, 4, 9, want)

	// Front deletion across the gap-free middle up to the last entry.
	if err := s.DeleteRange(0, 9); err != nil {
		t.Fatal(err)
	}
	expectLogs(t, s, 0, 0, nil)
	reopen()
	expectLogs(t, s, 0, 0, nil)

	// Storing after everything was deleted (after a snapshot install).
	if err := s.StoreLogs(logsBetween(100, 101, 4)); err != nil {
		t.Fatal(err)
	}
	expectLogs(t, s, 100, 101, span(100, 101, 4, nil))
	if err := s.DeleteRange(101, ^uint64(0)); err != nil {
		t.Fatal(err)
	}
	expectLogs(t, s, 100, 100, span(100, 100, 4, nil))
	if err := s.DeleteRange(5, 4); err != nil { // empty range
		t.Fatal(err)
	}
	if err := s.StoreLogs(nil); err != nil {
		t.Fatal(err)
	}
	expectLogs(t, s, 100, 100, span(100, 100, 4, nil))
}

func TestLogStoreDetectsCorruptRecords(t *testing.T) {
	db, _ := openMem(t, nil)
	s := mustLogStore(t, db, 1)
	if err := s.StoreLogs(logsBetween(1, 3, 1)); err != nil {
		t.Fatal(err)
	}
	key := appendLogKey(nil, 1, 2)
	v, closer, err := db.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	good := bytes.Clone(v)
	closer.Close()

	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0x10
		if err := db.Set(key, bad, nil); err != nil {
			t.Fatal(err)
		}
		var l raft.Log
		if err := s.GetLog(2, &l); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flip at %d: err = %v", i, err)
		}
	}
	for _, bad := range [][]byte{nil, good[:3], good[:len(good)-1], encodeLog(nil, testLog(3, 1))} {
		if err := db.Set(key, bad, nil); err != nil {
			t.Fatal(err)
		}
		var l raft.Log
		if err := s.GetLog(2, &l); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("record %x: err = %v", bad, err)
		}
	}
}

func TestStableStore(t *testing.T) {
	db, fs := openMem(t, nil)
	s := mustLogStore(t, db, 1)

	// Missing keys: exactly what hashicorp/raft expects ("not found").
	if v, err := s.Get([]byte("CurrentTerm")); v != nil || err == nil || err.Error() != "not found" || !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Get(missing) = %v, %v", v, err)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); v != 0 || err == nil || err.Error() != "not found" {
		t.Fatalf("GetUint64(missing) = %v, %v", v, err)
	}

	if err := s.Set([]byte("LastVoteCand"), []byte("node-2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("Empty"), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 1<<40+5); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil { // overwrite
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, _ = openMem(t, fs)
	s = mustLogStore(t, db, 1)

	if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "node-2" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if v, err := s.Get([]byte("Empty")); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("Get(empty value) = %#v, %v", v, err)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 7 {
		t.Fatalf("GetUint64 = %d, %v", v, err)
	}
	if _, err := s.GetUint64([]byte("LastVoteCand")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("GetUint64 of a non-uint64: %v", err)
	}
	if err := db.Set(stableKey(1, []byte("LastVoteCand")), []byte("node-2\x00\x00\x00\x00"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get([]byte("LastVoteCand")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of a damaged value: %v", err)
	}
}

func TestLogStoreConcurrentAppendAndCompact(t *testing.T) {
	db, _ := openMem(t, nil)
	s := mustLogStore(t, db, 1)
	const n = 400
	var wg sync.WaitGroup
	appended := make(chan uint64, n)
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(appended)
		for i := uint64(1); i <= n; i += 4 {
			if err := s.StoreLogs(logsBetween(i, i+3, 1)); err != nil {
				t.Error(err)
				return
			}
			appended <- i + 3
		}
	}()
	go func() {
		defer wg.Done()
		for last := range appended {
			if last > 20 && last%20 == 0 {
				if err := s.DeleteRange(0, last-20); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	wg.Wait()
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if last != n || first != n-19 {
		t.Fatalf("first %d last %d", first, last)
	}
	fresh := mustLogStore(t, db, 1)
	if f, _ := fresh.FirstIndex(); f != first {
		t.Fatalf("cached first %d, seek says %d", first, f)
	}
}

func TestShardsAreIsolated(t *testing.T) {
	db, _ := openMem(t, nil)
	s1, s2 := mustLogStore(t, db, 1), mustLogStore(t, db, 2)
	f1, f2 := mustFSM(t, db, 1, Options{}), mustFSM(t, db, 2, Options{})
	if err := s1.StoreLogs(logsBetween(1, 5, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s2.StoreLogs(logsBetween(10, 12, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s1.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Fatal(err)
	}
	applyOne(t, f1, entry(5, cmd(put("k", "one"))))
	applyOne(t, f2, entry(12, cmd(put("k", "two"), put("only2", "x"))))

	expectLogs(t, s1, 1, 5, span(1, 5, 1, nil))
	expectLogs(t, s2, 10, 12, span(10, 12, 1, nil))
	if _, err := s2.GetUint64([]byte("CurrentTerm")); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("shard 2 sees shard 1's stable store: %v", err)
	}
	if v, _, _ := mustGet(t, f1, "k"); v != "one" {
		t.Fatalf("shard 1 k = %q", v)
	}
	if _, _, found := mustGet(t, f1, "only2"); found {
		t.Fatal("shard 1 sees shard 2's data")
	}
	if err := s1.DeleteRange(1, 5); err != nil {
		t.Fatal(err)
	}
	expectLogs(t, s2, 10, 12, span(10, 12, 1, nil))

	h2 := mustHash(t, f2)
	if err := s1.StoreLogs(logsBetween(6, 7, 1)); err != nil {
		t.Fatal(err)
	}
	if err := DeleteShard(db, 1); err != nil {
		t.Fatal(err)
	}
	s1, f1 = mustLogStore(t, db, 1), mustFSM(t, db, 1, Options{})
	expectLogs(t, s1, 0, 0, nil)
	if _, err := s1.GetUint64([]byte("CurrentTerm")); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("stable store survived DeleteShard: %v", err)
	}
	if f1.AppliedIndex() != 0 || dump(t, f1) != "" {
		t.Fatalf("shard 1 after delete: applied %d data %s", f1.AppliedIndex(), dump(t, f1))
	}
	expectLogs(t, s2, 10, 12, span(10, 12, 1, nil))
	if mustHash(t, f2) != h2 || f2.AppliedIndex() != 12 {
		t.Fatal("DeleteShard touched shard 2")
	}
}

// TestDeleteShardLeavesNoLiveSSTable checks the bytes on disk: after
// DeleteShard, no live sstable holds a value of the deleted shard, while
// the other shard's values are still found in them.
func TestDeleteShardLeavesNoLiveSSTable(t *testing.T) {
	fs := vfs.NewMem()
	db, _ := openMem(t, fs)
	// Random values do not compress, so they appear verbatim in sstables.
	marker := func(shard uint64, i int) []byte {
		rng := rand.New(rand.NewPCG(shard, uint64(i)))
		b := make([]byte, 48)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		return b
	}
	// Both shards' keys end up in the same sstables, so no file is wholly
	// covered by the deletion and Pebble cannot simply drop files: the
	// deleted shard's bytes leave only through a compaction that rewrites.
	for e := 0; e < 20; e++ {
		for shard := uint64(1); shard <= 2; shard++ {
			var ops []Op
			for i := 0; i < 50; i++ {
				ops = append(ops, Op{Kind: OpPut, Key: fmt.Appendf(nil, "key-%04d", e*50+i), Value: marker(shard, e*50+i)})
			}
			applyOne(t, mustFSM(t, db, shard, Options{}), entry(uint64(e+1), Command{Ops: ops}))
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	// liveContaining counts the shard's values found in live sstables. A
	// background compaction may remove a listed file before it is read;
	// then the listing is taken again.
	liveContaining := func(shard uint64) int {
		t.Helper()
	retry:
		for attempt := 0; ; attempt++ {
			tables, err := db.SSTables()
			if err != nil {
				t.Fatal(err)
			}
			found := 0
			for _, level := range tables {
				for _, tbl := range level {
					data, err := readFile(fs, fs.PathJoin("db", fmt.Sprintf("%06d.sst", tbl.BackingSSTNum)))
					if errors.Is(err, os.ErrNotExist) && attempt < 100 {
						continue retry
					}
					if err != nil {
						t.Fatal(err)
					}
					for i := 0; i < 1000; i++ {
						if bytes.Contains(data, marker(shard, i)) {
							found++
						}
					}
				}
			}
			return found
		}
	}
	if liveContaining(1) == 0 || liveContaining(2) == 0 {
		t.Fatal("markers not found in sstables before delete: the check would prove nothing")
	}
	if err := DeleteShard(db, 1); err != nil {
		t.Fatal(err)
	}
	if n := liveContaining(1); n != 0 {
		t.Fatalf("%d values of the deleted shard still in live sstables", n)
	}
	if n := liveContaining(2); n != 1000 {
		t.Fatalf("only %d of 1000 values of the other shard found", n)
	}
}

func readFile(fs vfs.FS, name string) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, st.Size())
	_, err = f.ReadAt(buf, 0)
	return buf, err
}

// After a follower installs a snapshot raft deletes its whole log
// ([first, last]) while it still believes it holds the entries up to last
// (hashicorp/raft#697): the store deletes only up to the applied index (the
// snapshot's), so those entries stay readable. A prefix at or below the
// applied index and a conflicting suffix above it are deleted as asked.
func TestDeleteRangeKeepsTheLogAboveTheAppliedIndex(t *testing.T) {
	db, _ := openMem(t, nil)
	s := mustLogStore(t, db, 1)
	if err := s.StoreLogs(logsBetween(1, 100, 2)); err != nil {
		t.Fatal(err)
	}
	setApplied := func(i uint64) {
		t.Helper()
		if err := db.Set(appliedKey(1), encodeApplied(nil, i, 2), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	setApplied(60) // a snapshot at 60 was restored
	if err := s.DeleteRange(1, 100); err != nil {
		t.Fatal(err)
	}
	expectLogs(t, s, 61, 100, span(61, 100, 2, nil))

	// A conflicting tail above the applied index goes.
	if err := s.DeleteRange(90, 100); err != nil {
		t.Fatal(err)
	}
	expectLogs(t, s, 61, 89, span(61, 89, 2, nil))
	// Compaction below the applied index: as asked.
	setApplied(80)
	if err := s.DeleteRange(61, 70); err != nil {
		t.Fatal(err)
	}
	expectLogs(t, s, 71, 89, span(71, 89, 2, nil))
}
