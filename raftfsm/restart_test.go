package raftfsm

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

func TestRestartSkipsAppliedEntries(t *testing.T) {
	db, fs := openMem(t, nil)
	f := mustFSM(t, db, 1, Options{})
	logs := randomEntries(rand.New(rand.NewPCG(7, 7)), 60)
	f.ApplyBatch(logs[:40])
	wantHash, wantDump := mustHash(t, f), dump(t, f)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, _ = openMem(t, fs)
	f = mustFSM(t, db, 1, Options{})
	if f.AppliedIndex() != 40 {
		t.Fatalf("applied index after reopen %d, want 40", f.AppliedIndex())
	}
	if mustHash(t, f) != wantHash {
		t.Fatal("state changed across reopen")
	}
	// Raft replays from an older index: the applied part is skipped.
	resps := f.ApplyBatch(logs[10:40])
	for i, resp := range resps {
		if logs[10+i].Type != raft.LogCommand {
			continue
		}
		if rs := resp.([]Result); len(rs) != 1 || !errors.Is(rs[0].Err, ErrAlreadyApplied) {
			t.Fatalf("replayed entry %d: %v", logs[10+i].Index, rs)
		}
	}
	if mustHash(t, f) != wantHash || dump(t, f) != wantDump || f.AppliedIndex() != 40 {
		t.Fatal("replaying applied entries changed state")
	}
	// A batch straddling the applied index applies only the new part, with
	// the same outcome as a replica that never restarted.
	f.ApplyBatch(logs[35:])
	db2, _ := openMem(t, nil)
	ref := mustFSM(t, db2, 1, Options{})
	ref.ApplyBatch(logs)
	if mustHash(t, f) != mustHash(t, ref) || f.AppliedIndex() != 60 {
		t.Fatalf("after straddling batch: state differs from a replica that never restarted")
	}
}

// TestCrashKeepsDataAndAppliedIndexTogether simulates crashes that lose an
// arbitrary part of the unsynced WAL: whatever survives, a key written by
// entry i is present exactly when the recovered applied index is >= i,
// because the applied index is written in the same batch as the data. And
// everything applied before a Snapshot call survives, because Snapshot
// syncs before it captures the applied index.
func TestCrashKeepsDataAndAppliedIndexTogether(t *testing.T) {
	mem := vfs.NewCrashableMem()
	db, _ := openMem(t, mem)
	f := mustFSM(t, db, 1, Options{})
	const n, synced = 300, 150
	value := strings.Repeat("v", 200)
	for i := uint64(1); i <= n; i++ {
		applyOne(t, f, entry(i, cmd(put(fmt.Sprintf("k%03d", i), value))))
		if i == synced {
			snap, err := f.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			snap.Release()
		}
	}
	seen := map[uint64]bool{}
	for seed := uint64(0); seed < 12; seed++ {
		clone := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(seed, 3))})
		cdb, _ := openMem(t, clone)
		cf := mustFSM(t, cdb, 1, Options{})
		applied := cf.AppliedIndex()
		seen[applied] = true
		if applied < synced {
			t.Fatalf("seed %d: applied index %d after crash, below the %d synced by Snapshot", seed, applied, synced)
		}
		kvs, err := cf.Scan(nil, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		if uint64(len(kvs)) != applied {
			t.Fatalf("seed %d: applied index %d but %d keys", seed, applied, len(kvs))
		}
		for i, kv := range kvs {
			if want := fmt.Sprintf("k%03d", i+1); string(kv.Key) != want || kv.Version != uint64(i+1) {
				t.Fatalf("seed %d: key %d is %s@%d", seed, i, kv.Key, kv.Version)
			}
		}
		if err := cdb.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("recovered applied indexes: %v", seen)
}
