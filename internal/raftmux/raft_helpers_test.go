package raftmux

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// listFSM records the commands it applied, in order.
type listFSM struct {
	mu   sync.Mutex
	cmds []string
}

func (f *listFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, string(l.Data))
	return len(f.cmds)
}

func (f *listFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return listSnapshot(slices.Clone(f.cmds)), nil
}

func (f *listFSM) Restore(rc io.ReadCloser) error {
	defer func() { _ = rc.Close() }()
	var cmds []string
	sc := bufio.NewScanner(rc)
	for sc.Scan() {
		cmds = append(cmds, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	f.cmds = cmds
	f.mu.Unlock()
	return nil
}

func (f *listFSM) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cmds)
}

type listSnapshot []string

func (s listSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := io.WriteString(sink, strings.Join(s, "\n")); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (listSnapshot) Release() {}

// replica is one shard's raft.Raft on one node.
type replica struct {
	raft *raft.Raft
	fsm  *listFSM
}

func testRaftConfig(t *testing.T, id raft.ServerID) *raft.Config {
	t.Helper()
	c := raft.DefaultConfig()
	c.LocalID = id
	c.HeartbeatTimeout = 200 * time.Millisecond
	c.ElectionTimeout = 200 * time.Millisecond
	c.LeaderLeaseTimeout = 100 * time.Millisecond
	c.CommitTimeout = 10 * time.Millisecond
	c.Logger = hclog.New(&hclog.LoggerOptions{Output: io.Discard, Level: hclog.Off})
	if err := raft.ValidateConfig(c); err != nil {
		t.Fatalf("raft config: %v", err)
	}
	return c
}

// startReplica registers shard on m and starts a raft.Raft over it. When
// bootstrap is non-empty the replica bootstraps the group with those voters.
func startReplica(t *testing.T, m testMux, id raft.ServerID, shard uint64, g Guard, bootstrap []raft.Server) *replica {
	t.Helper()
	return startReplicaWith(t, m, testRaftConfig(t, id), shard, g, bootstrap)
}

// startReplicaWith is startReplica with a Raft configuration of the test's.
func startReplicaWith(t *testing.T, m testMux, conf *raft.Config, shard uint64, g Guard, bootstrap []raft.Server) *replica {
	t.Helper()
	id := conf.LocalID
	trans, err := m.Transport(shard, g, TransportConfig{Timeout: 2 * time.Second, MaxRPCsInFlight: 1})
	if err != nil {
		t.Fatalf("register shard %d on %s: %v", shard, id, err)
	}
	store := raft.NewInmemStore()
	f := &listFSM{}
	r, err := raft.NewRaft(conf, f, store, store, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		t.Fatalf("raft for shard %d on %s: %v", shard, id, err)
	}
	t.Cleanup(func() { _ = r.Shutdown().Error() })
	if len(bootstrap) > 0 {
		if err := r.BootstrapCluster(raft.Configuration{Servers: bootstrap}).Error(); err != nil {
			t.Fatalf("bootstrap shard %d: %v", shard, err)
		}
	}
	return &replica{raft: r, fsm: f}
}

func servers(ids []raft.ServerID, muxes []testMux) []raft.Server {
	out := make([]raft.Server, len(ids))
	for i := range ids {
		out[i] = raft.Server{Suffrage: raft.Voter, ID: ids[i], Address: muxes[i].addr()}
	}
	return out
}

// waitLeader waits until one of reps is leader and returns it.
func waitLeader(t *testing.T, what string, reps ...*replica) *replica {
	t.Helper()
	var leader *replica
	waitFor(t, 10*time.Second, what+" to elect a leader", func() bool {
		for _, r := range reps {
			if r.raft.State() == raft.Leader {
				leader = r
				return true
			}
		}
		return false
	})
	return leader
}

func applyAll(t *testing.T, leader *replica, cmds []string) {
	t.Helper()
	for _, c := range cmds {
		if err := leader.raft.Apply([]byte(c), 5*time.Second).Error(); err != nil {
			t.Fatalf("apply %s: %v", c, err)
		}
	}
}

// waitApplied waits until every replica's FSM holds exactly want.
func waitApplied(t *testing.T, what string, want []string, reps ...*replica) {
	t.Helper()
	for i, r := range reps {
		waitFor(t, 10*time.Second, fmt.Sprintf("%s replica %d to apply %d commands", what, i, len(want)), func() bool {
			return len(r.fsm.list()) >= len(want)
		})
		if got := r.fsm.list(); !slices.Equal(got, want) {
			t.Fatalf("%s replica %d applied %q, want %q", what, i, got, want)
		}
	}
}

func commands(shard uint64, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("shard%d-cmd%d", shard, i)
	}
	return out
}
