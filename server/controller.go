package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/placement"
	"github.com/clover-kv/clover/raftfsm"
)

// caughtUpEntries is how close (in log entries) a non-voter's applied index
// must be to its leader's commit index before it is promoted.
const caughtUpEntries = 64

// controller is the placement controller. It runs on the meta-group leader:
// each round it reads every shard's actual Raft configuration from the
// replicas, asks placement.Plan for the next actions, and executes them, one
// membership change in flight per shard. Rounds run on a timer and whenever
// membership or the catalogue changes.
type controller struct {
	s    *Server
	wake chan struct{}

	mu        sync.Mutex
	downSince map[string]time.Time
	busy      map[uint64]bool
	// A shard whose last action failed waits before the next one.
	retryAt  map[uint64]time.Time
	failures map[uint64]int
	// changedAt is when an action on the shard last finished: a view
	// gathered before it is stale for that shard.
	changedAt map[uint64]time.Time
	// moving holds the leadership transfers in flight, and those finished
	// that no view has shown yet (see leaderView).
	moving map[uint64]leaderMove
	// leaders is the leader each shard was last seen with, and since when
	// (see leaderView).
	leaders map[uint64]leaderSeen
	last    *assessment
}

// leaderMove is a leadership transfer the controller started.
type leaderMove struct {
	to   string    // the node leadership moves to
	done time.Time // when the transfer finished; zero while in flight
}

// leaderSeen is a shard's leader as the controller last saw it.
type leaderSeen struct {
	node  string
	since time.Time // when the controller first saw node lead, or moved leadership there
}

// assessment is one round's view: the plan and the conformance check.
type assessment struct {
	gathered time.Time // when the replicas' reports were requested
	plan     placement.Plan
	verify   *pb.PlacementVerifyResponse
	leaders  map[uint64]string
	views    map[uint64]*shardView
}

func newController(s *Server) *controller {
	return &controller{s: s, wake: make(chan struct{}, 1), downSince: map[string]time.Time{}, busy: map[uint64]bool{},
		retryAt: map[uint64]time.Time{}, failures: map[uint64]int{}, changedAt: map[uint64]time.Time{},
		moving: map[uint64]leaderMove{}, leaders: map[uint64]leaderSeen{}}
}

func (ct *controller) poke() {
	select {
	case ct.wake <- struct{}{}:
	default:
	}
}

func (ct *controller) loop(ctx context.Context) {
	tick := time.NewTicker(ct.s.cfg.ReconcileInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-ct.wake:
		}
		if !ct.s.meta.isLeader() {
			ct.mu.Lock()
			clear(ct.downSince) // a new leader starts its own grace periods
			clear(ct.leaders)   // and its own leader balance intervals
			ct.mu.Unlock()
			continue
		}
		a, err := ct.assess(ctx)
		if err != nil {
			if ctx.Err() == nil {
				ct.s.logger.Warn("placement: plan", "err", err)
			}
			continue
		}
		ct.execute(ctx, a)
	}
}

// assess builds the cluster state from every node's report and plans.
func (ct *controller) assess(ctx context.Context) (*assessment, error) {
	s := ct.s
	now := time.Now()
	statuses := s.gatherStatus(ctx)
	c := s.catalog()
	reachable := map[string]bool{}
	for _, st := range statuses {
		// A node that announced its leave is handing its leaderships over:
		// it is not live for placement, so none moves back to it.
		if st.Node != nil && st.Reachable && st.Node.Live && raftHealthy(st, s.cfg.Raft.HeartbeatTimeout) &&
			!s.departures.leaving(st.Node.Id) {
			reachable[st.Node.Id] = true
		}
	}
	state := placement.ClusterState{Policies: map[string]placement.Policy{}}
	ct.mu.Lock()
	for _, n := range c.sortedNodes() {
		live := reachable[n.ID]
		if live {
			delete(ct.downSince, n.ID)
		} else if _, ok := ct.downSince[n.ID]; !ok {
			ct.downSince[n.ID] = now
		}
		dead := !live && now.Sub(ct.downSince[n.ID]) > s.cfg.DeadNodeGrace
		state.Nodes = append(state.Nodes, placement.NodeState{ID: n.ID, Locality: n.Locality, Live: live, Dead: dead})
	}
	busy := maps.Clone(ct.busy)
	for id, at := range ct.retryAt {
		if now.Before(at) {
			busy[id] = true
		}
	}
	ct.mu.Unlock()

	views := shardViews(statuses)
	leaders := map[uint64]string{}
	ct.mu.Lock()
	ct.forgetDropped(c)
	ct.mu.Unlock()
	for _, ks := range c.sortedKeyspaces() {
		state.Policies[ks.Name] = ks.Policy
		for _, sh := range ks.Shards {
			ss := placement.ShardState{ID: sh.ID, Keyspace: ks.Name, Busy: busy[sh.ID]}
			v := views[sh.ID]
			if v == nil || len(v.members) == 0 {
				for _, r := range sh.Replicas {
					ss.Replicas = append(ss.Replicas, placement.ReplicaState{Node: r, Voter: true})
				}
				state.Shards = append(state.Shards, ss)
				continue
			}
			leaders[sh.ID] = v.leader
			ct.mu.Lock()
			ss.Leader, ss.LeaderHeld, ss.Busy = ct.leaderView(sh.ID, v, now)
			ct.mu.Unlock()
			ss.Busy = ss.Busy || busy[sh.ID]
			lead := v.status[v.leader]
			for _, m := range v.members {
				rs := placement.ReplicaState{Node: m.NodeId, Voter: m.Voter}
				if st := v.status[m.NodeId]; st != nil && st.Damaged {
					rs.Damaged = true
				} else if !m.Voter && st != nil && lead != nil && st.AppliedIndex+caughtUpEntries >= lead.CommitIndex {
					rs.CaughtUp = true
				}
				ss.Replicas = append(ss.Replicas, rs)
			}
			state.Shards = append(state.Shards, ss)
		}
	}
	plan, err := s.jurisdict.Plan(state, placement.PlanConfig{MaxMovesInFlight: s.cfg.MaxMovesInFlight})
	if err != nil {
		return nil, err
	}
	a := &assessment{gathered: now, plan: plan, verify: verifyPlacement(c, statuses), leaders: leaders, views: views}
	ct.mu.Lock()
	prev := ct.last
	ct.last = a
	ct.mu.Unlock()
	if !a.verify.Ok && (prev == nil || prev.verify.Ok || len(prev.verify.Violations) != len(a.verify.Violations)) {
		s.logger.Warn("placement: conformance check found violations", "violations", len(a.verify.Violations))
	}
	return a, nil
}

// leaderView decides the leader a round plans with for shard id, from view
// v gathered at now, and whether the shard is held from leader balance or
// busy. Plans that count a leadership where it was, rather than where a
// transfer is taking it, balance the other shards against it and move them
// twice (a ping-pong): so a shard whose transfer is in flight, or finished
// after v was gathered, or finished so recently that its new leader is not
// elected yet, is busy and planned with the transfer's target as leader.
// A shard whose leader changed (by a transfer or an election), or that this
// controller sees for the first time, is held from balance for
// LeaderBalanceInterval. Callers hold ct.mu.
func (ct *controller) leaderView(id uint64, v *shardView, now time.Time) (leader string, held, busy bool) {
	leader = v.leader
	if m, ok := ct.moving[id]; ok {
		pending := m.done.IsZero() || !now.After(m.done) ||
			(v.leader == "" && now.Sub(m.done) < leaderSettle)
		if pending {
			return m.to, true, true
		}
		delete(ct.moving, id)
	}
	seen, ok := ct.leaders[id]
	if leader != "" && (!ok || seen.node != leader) {
		seen = leaderSeen{node: leader, since: now}
		ct.leaders[id] = seen
	}
	return leader, now.Sub(seen.since) < ct.s.cfg.LeaderBalanceInterval, false
}

// leaderSettle bounds how long a finished transfer waits for its shard's
// replicas to report a leader before the controller plans with what they
// say.
const leaderSettle = 10 * time.Second

// forgetDropped drops the leader records of shards no longer in the
// catalogue. Callers hold ct.mu.
func (ct *controller) forgetDropped(c *catalog) {
	for id := range ct.leaders {
		if _, ok := c.shards[id]; !ok {
			delete(ct.leaders, id)
		}
	}
	for id := range ct.moving {
		if _, ok := c.shards[id]; !ok {
			delete(ct.moving, id)
		}
	}
}

// lastAssessment returns the latest round, assessing now if there is none.
func (ct *controller) lastAssessment(ctx context.Context) (*assessment, error) {
	ct.mu.Lock()
	a := ct.last
	ct.mu.Unlock()
	if a != nil {
		return a, nil
	}
	return ct.assess(ctx)
}

// execute starts the planned actions and brings the meta group's record of
// each idle shard's replicas in line with its actual configuration.
func (ct *controller) execute(ctx context.Context, a *assessment) {
	planned := map[uint64]bool{}
	for _, act := range a.plan.Actions {
		planned[act.Shard] = true
		ct.mu.Lock()
		if ct.busy[act.Shard] {
			ct.mu.Unlock()
			continue
		}
		ct.busy[act.Shard] = true
		if act.Kind == placement.TransferLeader {
			ct.moving[act.Shard] = leaderMove{to: act.Node}
		}
		ct.mu.Unlock()
		ct.s.wg.Add(1)
		go func(act placement.Action) {
			defer ct.s.wg.Done()
			actx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := ct.apply(actx, act, a.leaders[act.Shard])
			cancel()
			ct.mu.Lock()
			delete(ct.busy, act.Shard)
			done := time.Now()
			ct.changedAt[act.Shard] = done
			if act.Kind == placement.TransferLeader {
				if err != nil {
					delete(ct.moving, act.Shard)
				} else {
					ct.moving[act.Shard] = leaderMove{to: act.Node, done: done}
					ct.leaders[act.Shard] = leaderSeen{node: act.Node, since: done}
				}
			}
			if err != nil {
				// Back off this shard: 250ms, doubling up to 10s.
				ct.failures[act.Shard]++
				wait := min(250*time.Millisecond<<min(ct.failures[act.Shard]-1, 6), 10*time.Second)
				ct.retryAt[act.Shard] = time.Now().Add(wait)
			} else {
				delete(ct.failures, act.Shard)
				delete(ct.retryAt, act.Shard)
			}
			ct.mu.Unlock()
			if err != nil {
				if ctx.Err() == nil {
					ct.s.logger.Warn("placement: action failed; retrying later", "action", act.Kind.String(), "shard", act.Shard, "member", act.Node, "err", err)
				}
				return
			}
			ct.poke()
		}(act)
	}
	ct.syncRecords(ctx, a, planned)
}

// apply carries out one action.
func (ct *controller) apply(ctx context.Context, act placement.Action, leader string) error {
	s := ct.s
	ev := historyEvent{Shard: act.Shard, Keyspace: act.Keyspace, Node: act.Node, Reason: act.Reason}
	var kind pb.ChangeReplicaRequest_Kind
	switch act.Kind {
	case placement.AddNonVoter:
		// Record the replica first so the node opens it (without
		// bootstrapping), then add it to the Raft configuration.
		if err := s.updateShardReplicas(ctx, act.Shard, func(r []string) []string {
			if !slices.Contains(r, act.Node) {
				r = append(r, act.Node)
			}
			return r
		}); err != nil {
			return err
		}
		kind = pb.ChangeReplicaRequest_KIND_ADD_NONVOTER
	case placement.PromoteVoter:
		kind, ev.Action = pb.ChangeReplicaRequest_KIND_PROMOTE, "promote"
	case placement.RemoveReplica:
		kind = pb.ChangeReplicaRequest_KIND_REMOVE
	case placement.TransferLeader:
		kind, ev.Action = pb.ChangeReplicaRequest_KIND_TRANSFER_LEADER, "transfer-leader"
	default:
		return fmt.Errorf("unknown action %v", act.Kind)
	}
	if err := s.askLeader(ctx, leader, &pb.ChangeReplicaRequest{Kind: kind, ShardId: act.Shard, NodeId: act.Node}); err != nil {
		return err
	}
	switch act.Kind {
	case placement.RemoveReplica:
		// Out of the configuration: drop it from the record, and the node
		// deletes the shard's data.
		ev.Action = "remove-replica"
		return s.updateShardReplicas(ctx, act.Shard, func(r []string) []string {
			return slices.DeleteFunc(r, func(n string) bool { return n == act.Node })
		}, ev)
	case placement.AddNonVoter:
		ev.Action = "add-replica"
	}
	_, err := s.metaPropose(ctx, raftfsm.Command{Ops: s.historyOps(s.catalog(), ev), Audit: s.historyLeaf(ctx, ev)})
	return err
}

// askLeader sends a membership change to the shard leader.
func (s *Server) askLeader(ctx context.Context, leader string, req *pb.ChangeReplicaRequest) error {
	if leader == s.cfg.NodeID {
		return s.changeReplica(ctx, req)
	}
	cc, err := s.peers.get(s.grpcAddrOf(leader))
	if err != nil {
		return err
	}
	_, err = pb.NewInternalClient(cc).ChangeReplica(ctx, req)
	return err
}

// syncRecords makes the meta group's replica list of every idle shard with a
// known leader equal to its actual Raft configuration: a replica recorded but
// never added (a failed add) is dropped, so its node deletes it.
func (ct *controller) syncRecords(ctx context.Context, a *assessment, planned map[uint64]bool) {
	s := ct.s
	c := s.catalog()
	for id, ref := range c.shards {
		v := a.views[id]
		ct.mu.Lock()
		busy := ct.busy[id]
		stale := ct.changedAt[id].After(a.gathered)
		ct.mu.Unlock()
		// Only a settled shard with one undisputed leader whose view is
		// newer than the last change to it.
		if busy || stale || planned[id] || v == nil || v.leader == "" || v.claims != 1 || len(v.members) == 0 {
			continue
		}
		actual := make([]string, 0, len(v.members))
		for _, m := range v.members {
			actual = append(actual, m.NodeId)
		}
		var gone []string
		for _, r := range ref.shard.Replicas {
			if !slices.Contains(actual, r) {
				gone = append(gone, r)
			}
		}
		missing := false
		for _, r := range actual {
			missing = missing || !slices.Contains(ref.shard.Replicas, r)
		}
		established := len(ref.shard.Initial) > 0
		if len(gone) == 0 && !missing && !established {
			continue
		}
		var events []historyEvent
		if len(gone) > 0 || missing {
			events = append(events, historyEvent{Shard: id, Keyspace: ref.ks.Name, Action: "record-sync",
				Reason: fmt.Sprintf("record set to the shard's Raft configuration %v", actual)})
		}
		err := s.updateShard(ctx, id, func(sh *shardRecord) {
			// The group has a leader: no replica may bootstrap it again
			// (a re-added or wiped initial member joins through the leader).
			sh.Initial = nil
			out := slices.DeleteFunc(sh.Replicas, func(n string) bool { return !slices.Contains(actual, n) })
			for _, n := range actual {
				if !slices.Contains(out, n) {
					out = append(out, n)
				}
			}
			sh.Replicas = out
		}, events...)
		if err != nil && ctx.Err() == nil {
			s.logger.Warn("placement: sync replica record", "shard", id, "err", err)
		}
	}
}

// updateShardReplicas changes the recorded replicas of one shard (with a
// history event) by compare-and-swap on its keyspace record.
func (s *Server) updateShardReplicas(ctx context.Context, shardID uint64, edit func([]string) []string, events ...historyEvent) error {
	return s.updateShard(ctx, shardID, func(sh *shardRecord) { sh.Replicas = edit(sh.Replicas) }, events...)
}

// updateShard changes one shard's record (with history events) by
// compare-and-swap on its keyspace record.
func (s *Server) updateShard(ctx context.Context, shardID uint64, edit func(*shardRecord), events ...historyEvent) error {
	for attempt := 0; ; attempt++ {
		c := s.catalog()
		ref, ok := c.shards[shardID]
		if !ok {
			return fmt.Errorf("shard %d is no longer in the catalogue", shardID)
		}
		ks := *ref.ks
		ks.Shards = slices.Clone(ks.Shards)
		for i := range ks.Shards {
			if ks.Shards[i].ID == shardID {
				ks.Shards[i].Replicas = slices.Clone(ks.Shards[i].Replicas)
				ks.Shards[i].Initial = slices.Clone(ks.Shards[i].Initial)
				edit(&ks.Shards[i])
			}
		}
		ops := append([]raftfsm.Op{{Kind: raftfsm.OpPut, Key: metaKSKey(ks.Name), Value: mustJSON(&ks), HasCond: true, CondVersion: ref.ks.version}},
			s.historyOps(c, events...)...)
		_, err := s.metaPropose(ctx, raftfsm.Command{Ops: ops, Audit: s.historyLeaf(ctx, events...)})
		if errors.Is(err, ErrVersionMismatch) && attempt < 5 {
			continue
		}
		return err
	}
}

// raftHealthy reports whether a node's Raft traffic flows: gossip and gRPC
// may reach a node whose Raft links are cut, and such a node must not be
// given leadership or new replicas. It is unhealthy when none of its
// follower replicas has heard from a leader for several heartbeat
// timeouts (a node with no followers is healthy).
func raftHealthy(st *pb.NodeStatus, heartbeat time.Duration) bool {
	limit := (3 * heartbeat).Milliseconds()
	followers, stale := 0, 0
	for _, r := range st.Shards {
		if r.Leader || r.Fault != "" {
			continue
		}
		followers++
		if r.LastContactMs < 0 || r.LastContactMs > limit {
			stale++
		}
	}
	return followers == 0 || stale < followers
}
