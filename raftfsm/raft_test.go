package raftfsm_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"

	"github.com/clover-kv/clover/raftfsm"
)

const shard = 42

// node is one single-voter raft group over raftfsm.
type node struct {
	r              *raft.Raft
	fsm            *raftfsm.FSM
	store          *raftfsm.LogStore
	snaps          *raft.FileSnapshotStore
	restoreAtStart bool // raft restored the latest snapshot at start
}

func startNode(t *testing.T, db *pebble.DB, dir string, bootstrap bool) *node {
	t.Helper()
	fsm, err := raftfsm.New(db, shard, raftfsm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := raftfsm.NewLogStore(db, shard)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := raft.NewLogCache(64, store)
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := raft.NewFileSnapshotStore(filepath.Join(dir, "snaps"), 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	needRestore, err := fsm.NeedsRestore(snaps)
	if err != nil {
		t.Fatal(err)
	}
	conf := raft.DefaultConfig()
	conf.LocalID = "n1"
	conf.LogOutput = io.Discard
	conf.HeartbeatTimeout = 50 * time.Millisecond
	conf.ElectionTimeout = 50 * time.Millisecond
	conf.LeaderLeaseTimeout = 50 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	conf.SnapshotThreshold = 16
	conf.SnapshotInterval = time.Hour // snapshots only when the test asks
	conf.TrailingLogs = 8
	conf.NoSnapshotRestoreOnStart = !needRestore
	addr, trans := raft.NewInmemTransport("n1")
	r, err := raft.NewRaft(conf, fsm, cache, store, snaps, trans)
	if err != nil {
		t.Fatal(err)
	}
	if bootstrap {
		cfg := raft.Configuration{Servers: []raft.Server{{ID: conf.LocalID, Address: addr}}}
		if err := r.BootstrapCluster(cfg).Error(); err != nil {
			t.Fatal(err)
		}
	}
	waitLeader(t, r)
	return &node{r: r, fsm: fsm, store: store, snaps: snaps, restoreAtStart: needRestore}
}

// waitLeader waits until r is leader, watching LeaderCh, with a deadline.
func waitLeader(t *testing.T, r *raft.Raft) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for r.State() != raft.Leader {
		select {
		case <-r.LeaderCh():
		case <-deadline.C:
			t.Fatalf("no leader: state %v", r.State())
		}
	}
}

func (n *node) propose(t *testing.T, cmds ...raftfsm.Command) []raftfsm.Result {
	t.Helper()
	for _, c := range cmds {
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	f := n.r.Apply(raftfsm.EncodeEntry(nil, cmds), 5*time.Second)
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	if err := n.fsm.Err(); err != nil {
		t.Fatal(err)
	}
	return raftfsm.EntryResults(f.Response(), len(cmds))
}

func put(k, v string) raftfsm.Command {
	return raftfsm.Command{Ops: []raftfsm.Op{{Kind: raftfsm.OpPut, Key: []byte(k), Value: []byte(v)}}}
}

func cas(k, v string, ver uint64) raftfsm.Command {
	return raftfsm.Command{Ops: []raftfsm.Op{{Kind: raftfsm.OpPut, Key: []byte(k), Value: []byte(v), HasCond: true, CondVersion: ver}}}
}

func TestRaftEndToEnd(t *testing.T) {
	dir := t.TempDir()
	dbDir := filepath.Join(dir, "db")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := raftfsm.OpenDB(dbDir, raftfsm.DBOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, db, dir, true)

	versions := map[string]uint64{}
	for i := 0; i < 40; i++ {
		k := fmt.Sprintf("k%02d", i%10)
		rs := n.propose(t, put(k, fmt.Sprintf("v%d", i)), put(fmt.Sprintf("other%d", i), "x"))
		if rs[0].Err != nil || rs[1].Err != nil || rs[0].Version != rs[1].Version {
			t.Fatalf("put %d: %+v", i, rs)
		}
		versions[k] = rs[0].Version
	}
	// A stale CAS fails with the current version; a fresh one succeeds.
	rs := n.propose(t, cas("k00", "stale", versions["k00"]-1))
	var mm *raftfsm.MismatchError
	if !errors.As(rs[0].Err, &mm) || mm.Current != versions["k00"] {
		t.Fatalf("stale CAS: %+v", rs)
	}
	rs = n.propose(t, cas("k00", "fresh", versions["k00"]))
	if rs[0].Err != nil {
		t.Fatalf("CAS: %+v", rs)
	}
	versions["k00"] = rs[0].Version

	if err := n.r.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	metas, err := n.snaps.List()
	if err != nil || len(metas) == 0 {
		t.Fatalf("no snapshot stored: %v", err)
	}
	if first, _ := n.store.FirstIndex(); first <= 1 {
		t.Fatalf("logs not compacted after snapshot: first index %d", first)
	}
	// Writes after the snapshot live only in the log and the FSM.
	rs = n.propose(t, put("after", "snapshot"))
	versions["after"] = rs[0].Version

	wantHash, err := n.fsm.Hash()
	if err != nil {
		t.Fatal(err)
	}
	wantApplied := n.fsm.AppliedIndex()
	if err := n.r.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart on the same DB: the FSM keeps its own state; raft does not
	// restore the snapshot over it.
	db, err = raftfsm.OpenDB(dbDir, raftfsm.DBOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	n = startNode(t, db, dir, false)
	if n.restoreAtStart {
		t.Fatal("FSM ahead of its snapshot was restored from it")
	}
	if got := n.fsm.AppliedIndex(); got != wantApplied {
		t.Fatalf("applied index after restart %d, want %d", got, wantApplied)
	}
	if h, err := n.fsm.Hash(); err != nil || h != wantHash {
		t.Fatalf("state changed across restart (err %v)", err)
	}
	for k, ver := range versions {
		_, got, found, err := n.fsm.Get([]byte(k))
		if err != nil || !found || got != ver {
			t.Fatalf("%s: version %d found=%v err=%v, want %d", k, got, found, err, ver)
		}
	}
	// New writes continue above the old indexes.
	rs = n.propose(t, cas("after", "again", versions["after"]))
	if rs[0].Err != nil || rs[0].Version <= versions["after"] {
		t.Fatalf("write after restart: %+v", rs)
	}
	if err := n.r.Barrier(5 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	if n.fsm.AppliedIndex() != rs[0].Version {
		t.Fatalf("applied %d, want %d", n.fsm.AppliedIndex(), rs[0].Version)
	}
	if err := n.r.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// A replica whose DB is gone but whose snapshot store survived: the
	// FSM is behind the snapshot, so raft restores it at start.
	db, err = raftfsm.OpenDB(filepath.Join(dir, "db2"), raftfsm.DBOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	n = startNode(t, db, dir, false)
	t.Cleanup(func() {
		// Raft must be fully stopped before its DB closes.
		if err := n.r.Shutdown().Error(); err != nil {
			t.Error(err)
		}
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	if !n.restoreAtStart || n.fsm.AppliedIndex() == 0 {
		t.Fatalf("snapshot not restored: need=%v applied=%d", n.restoreAtStart, n.fsm.AppliedIndex())
	}
	if _, ver, found, err := n.fsm.Get([]byte("k00")); err != nil || !found || ver != versions["k00"] {
		t.Fatalf("k00 from snapshot: version %d found=%v err=%v", ver, found, err)
	}
	if _, _, found, _ := n.fsm.Get([]byte("after")); found {
		t.Fatal("a write made after the snapshot appeared without its log")
	}
}
