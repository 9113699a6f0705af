package raftmux

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/clover-kv/clover/internal/faultnet"
)

// runShards starts shards 1..nShards on every mux, each bootstrapped by a
// different node, applies a different number of commands to each and checks
// that every replica applied exactly its own shard's commands.
func runShards(t *testing.T, muxes []testMux, nShards int) {
	t.Helper()
	ids := make([]raft.ServerID, len(muxes))
	for i := range ids {
		ids[i] = raft.ServerID(fmt.Sprintf("node%d", i))
	}
	voters := servers(ids, muxes)
	groups := make(map[uint64][]*replica)
	for s := uint64(1); s <= uint64(nShards); s++ {
		boot := int(s) % len(muxes)
		for i, m := range muxes {
			var b []raft.Server
			if i == boot {
				b = voters
			}
			groups[s] = append(groups[s], startReplica(t, m, ids[i], s, AllowAll{}, b))
		}
	}
	for s, reps := range groups {
		leader := waitLeader(t, fmt.Sprintf("shard %d", s), reps...)
		want := commands(s, 3+int(s))
		applyAll(t, leader, want)
		waitApplied(t, fmt.Sprintf("shard %d", s), want, reps...)
	}
	for i, m := range muxes {
		if m.accepts.Load() == 0 {
			t.Errorf("node %d accepted no connection", i)
		}
	}
}

func TestShardsShareOneListenerTwoNodes(t *testing.T) {
	runShards(t, []testMux{newMux(t, Config{}), newMux(t, Config{})}, 3)
}

func TestShardsShareOneListenerThreeNodes(t *testing.T) {
	runShards(t, []testMux{newMux(t, Config{}), newMux(t, Config{}), newMux(t, Config{})}, 3)
}

func TestTLSReplicates(t *testing.T) {
	srv, cli := testTLS(t)
	cfg := Config{ServerTLS: srv, ClientTLS: cli}
	runShards(t, []testMux{newMux(t, cfg), newMux(t, cfg), newMux(t, cfg)}, 2)
}

// A shard whose policy excludes node c: its leader never opens a connection
// to c, and c never receives an entry.
func TestDialGuardKeepsShardOffNode(t *testing.T) {
	a, b, c := newMux(t, Config{}), newMux(t, Config{}), newMux(t, Config{})
	ids := []raft.ServerID{"a", "b", "c"}
	const shard = 7
	ga, gb, gc := &testGuard{}, &testGuard{}, &testGuard{}
	for _, g := range []*testGuard{ga, gb, gc} {
		g.denyTarget(c.addr())
	}
	ra := startReplica(t, a, "a", shard, ga, servers(ids, []testMux{a, b, c}))
	rb := startReplica(t, b, "b", shard, gb, nil)
	rc := startReplica(t, c, "c", shard, gc, nil)

	leader := waitLeader(t, "shard 7", ra, rb)
	want := commands(shard, 5)
	applyAll(t, leader, want)
	waitApplied(t, "shard 7", want, ra, rb)
	waitFor(t, 5*time.Second, "the leader to try c and be refused", func() bool {
		return ga.refused.Load()+gb.refused.Load() > 0
	})

	if n := c.accepts.Load(); n != 0 {
		t.Fatalf("c accepted %d connections; a refused target must never be dialed", n)
	}
	if got := rc.fsm.list(); len(got) != 0 {
		t.Fatalf("c applied %d commands of a shard it may not hold", len(got))
	}
	if idx := rc.raft.LastIndex(); idx != 0 {
		t.Fatalf("c's log reached index %d", idx)
	}
}

// The transport closes its stream layer on Shutdown, which frees the shard:
// a replica restarted on the same node registers again and catches up.
func TestReplicaRestartReregisters(t *testing.T) {
	muxes := []testMux{newMux(t, Config{}), newMux(t, Config{}), newMux(t, Config{})}
	ids := []raft.ServerID{"n0", "n1", "n2"}
	const shard = 3
	reps := []*replica{
		startReplica(t, muxes[0], ids[0], shard, AllowAll{}, servers(ids, muxes)),
		startReplica(t, muxes[1], ids[1], shard, AllowAll{}, nil),
		startReplica(t, muxes[2], ids[2], shard, AllowAll{}, nil),
	}
	leader := waitLeader(t, "shard 3", reps...)
	first := commands(shard, 4)
	applyAll(t, leader, first)
	waitApplied(t, "shard 3", first, reps...)

	follower := slices.IndexFunc(reps, func(r *replica) bool { return r != leader })
	if err := reps[follower].raft.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	if _, err := muxes[follower].Register(shard, AllowAll{}); err == nil {
		muxes[follower].Unregister(shard)
	} else {
		t.Fatalf("shutdown did not free the shard: %v", err)
	}
	restarted := startReplica(t, muxes[follower], ids[follower], shard, AllowAll{}, nil)

	more := commands(shard, 8)
	applyAll(t, leader, more[len(first):])
	waitApplied(t, "restarted shard 3", more, restarted)
}

// With faultnet dialers, isolating a shard's leader makes the other two
// elect a new one; after healing, the old leader catches up.
func TestIsolatedLeaderIsReplaced(t *testing.T) {
	fn := faultnet.New()
	ids := []raft.ServerID{"a", "b", "c"}
	muxes := make([]testMux, len(ids))
	for i, id := range ids {
		muxes[i] = newMux(t, Config{Dial: fn.Dialer(string(id))})
		fn.Register(string(id), muxes[i].Addr().String())
	}
	const shard = 9
	reps := make([]*replica, len(ids))
	for i := range ids {
		var b []raft.Server
		if i == 0 {
			b = servers(ids, muxes)
		}
		reps[i] = startReplica(t, muxes[i], ids[i], shard, AllowAll{}, b)
	}
	old := waitLeader(t, "shard 9", reps...)
	first := commands(shard, 2)
	applyAll(t, old, first)
	waitApplied(t, "shard 9", first, reps...)

	oldIdx := slices.Index(reps, old)
	fn.Isolate(string(ids[oldIdx]))
	others := slices.Delete(slices.Clone(reps), oldIdx, oldIdx+1)
	leader := waitLeader(t, "the majority side", others...)
	all := commands(shard, 5)
	applyAll(t, leader, all[len(first):])
	waitApplied(t, "majority side", all, others...)
	if got := old.fsm.list(); len(got) != len(first) {
		t.Fatalf("isolated replica applied %d commands, want %d", len(got), len(first))
	}

	fn.Heal()
	waitApplied(t, "healed replica", all, old)
}
