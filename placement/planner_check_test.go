package placement

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// planViolations returns every way plan breaks the planner's safety rules
// for state s. permits is the test's own idea of which nodes a keyspace may
// use, so the check does not trust the planner's.
func planViolations(s ClusterState, cfg PlanConfig, plan Plan, permits func(ks string, n *NodeState) bool) []string {
	var bad []string
	fail := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }

	nodes := map[string]*NodeState{}
	for i := range s.Nodes {
		nodes[s.Nodes[i].ID] = &s.Nodes[i]
	}
	shards := map[uint64]*ShardState{}
	busy := 0
	for i := range s.Shards {
		shards[s.Shards[i].ID] = &s.Shards[i]
		if s.Shards[i].Busy {
			busy++
		}
	}
	isLive := func(id string) bool { n := nodes[id]; return n != nil && n.Live && !n.Dead }

	acted := map[uint64]bool{}
	moves := 0
	for i, a := range plan.Actions {
		if i > 0 && plan.Actions[i-1].Shard >= a.Shard {
			fail("actions not sorted by shard: %v then %v", plan.Actions[i-1], a)
		}
		sh := shards[a.Shard]
		if sh == nil {
			fail("%v: no such shard", a)
			continue
		}
		if acted[a.Shard] {
			fail("%v: second action for shard %d", a, a.Shard)
		}
		acted[a.Shard] = true
		if sh.Busy {
			fail("%v: shard is busy", a)
		}
		if a.Keyspace != sh.Keyspace || a.Reason == "" {
			fail("%v: keyspace or reason wrong", a)
		}
		var cur *ReplicaState
		voters, live := 0, 0
		for j := range sh.Replicas {
			r := &sh.Replicas[j]
			if r.Node == a.Node {
				cur = r
			}
			if r.Voter {
				voters++
				if isLive(r.Node) {
					live++
				}
			}
		}
		n := nodes[a.Node]
		okTarget := n != nil && permits(sh.Keyspace, n) && n.Live && !n.Dead
		if a.Kind.ChangesMembership() {
			moves++
			if sh.Leader == "" || live < voters/2+1 {
				fail("%v: membership change without a leader or a live quorum (%d of %d)", a, live, voters)
			}
		}
		switch a.Kind {
		case AddNonVoter:
			switch {
			case !okTarget:
				fail("%v: target not permitted, not live or dead", a)
			case n.Draining || n.DiskUsedFraction > DiskFullFraction:
				fail("%v: target draining or full", a)
			case cur != nil:
				fail("%v: target already holds a replica", a)
			}
		case PromoteVoter:
			if !okTarget || cur == nil || cur.Voter || !cur.CaughtUp {
				fail("%v: not a permitted, live, caught-up non-voter", a)
			}
		case TransferLeader:
			if !okTarget || cur == nil || !cur.Voter || a.Node == sh.Leader {
				fail("%v: not a permitted live voter other than the leader", a)
			}
		case RemoveReplica:
			switch {
			case cur == nil:
				fail("%v: no such replica", a)
			case a.Node == sh.Leader:
				fail("%v: removes the leader", a)
			case cur.Voter:
				after, afterLive := voters-1, live
				if isLive(a.Node) {
					afterLive--
				}
				if after < 1 || afterLive < after/2+1 {
					fail("%v: leaves %d live of %d voters", a, afterLive, after)
				}
			}
		default:
			fail("%v: unknown kind", a)
		}
	}
	if limit := cfg.maxMoves(); moves > 0 && moves+busy > limit {
		fail("%d membership changes planned with %d busy shards, limit %d", moves, busy, limit)
	}

	if len(plan.Shards) != len(s.Shards) {
		fail("%d reports for %d shards", len(plan.Shards), len(s.Shards))
	}
	for i, r := range plan.Shards {
		if i > 0 && plan.Shards[i-1].Shard >= r.Shard {
			fail("reports not sorted: %d then %d", plan.Shards[i-1].Shard, r.Shard)
		}
		sh := shards[r.Shard]
		if sh == nil {
			fail("report for unknown shard %d", r.Shard)
			continue
		}
		if (acted[r.Shard] || sh.Busy) && r.Status != Moving {
			fail("shard %d has an action or is busy but is %v", r.Shard, r.Status)
		}
		if r.Status == Conforming {
			if len(r.Problems) > 0 {
				fail("shard %d conforming with problems %q", r.Shard, r.Problems)
			}
			want := s.Policies[sh.Keyspace].Replicas
			if len(sh.Replicas) != want {
				fail("shard %d conforming with %d replicas, policy wants %d", r.Shard, len(sh.Replicas), want)
			}
			for _, rp := range sh.Replicas {
				n := nodes[rp.Node]
				if !rp.Voter || n == nil || !permits(sh.Keyspace, n) || !isLive(rp.Node) || n.Draining {
					fail("shard %d conforming with replica %+v", r.Shard, rp)
				}
			}
		} else if len(r.Problems) == 0 && !acted[r.Shard] {
			fail("shard %d is %v without a problem", r.Shard, r.Status)
		}
	}
	return bad
}

// cloneState returns a deep copy of s.
func cloneState(s ClusterState) ClusterState {
	out := ClusterState{Nodes: slices.Clone(s.Nodes), Policies: make(map[string]Policy, len(s.Policies)), Shards: slices.Clone(s.Shards)}
	for k, v := range s.Policies {
		out.Policies[k] = v
	}
	for i := range out.Shards {
		out.Shards[i].Replicas = slices.Clone(out.Shards[i].Replicas)
	}
	return out
}

// applyPlan returns s after every action of plan is done, as a controller
// would do it within one round. Every non-voter on a live node has caught
// up by the next round, including those added in this one.
func applyPlan(s ClusterState, plan Plan) ClusterState {
	s = cloneState(s)
	live := map[string]bool{}
	for _, n := range s.Nodes {
		live[n.ID] = n.Live && !n.Dead
	}
	for i := range s.Shards {
		for j := range s.Shards[i].Replicas {
			if r := &s.Shards[i].Replicas[j]; !r.Voter && live[r.Node] {
				r.CaughtUp = true
			}
		}
	}
	idx := map[uint64]int{}
	for i := range s.Shards {
		idx[s.Shards[i].ID] = i
	}
	for _, a := range plan.Actions {
		sh := &s.Shards[idx[a.Shard]]
		switch a.Kind {
		case AddNonVoter:
			sh.Replicas = append(sh.Replicas, ReplicaState{Node: a.Node, CaughtUp: true})
		case PromoteVoter:
			for j := range sh.Replicas {
				if sh.Replicas[j].Node == a.Node {
					sh.Replicas[j].Voter = true
				}
			}
		case RemoveReplica:
			sh.Replicas = slices.DeleteFunc(sh.Replicas, func(r ReplicaState) bool { return r.Node == a.Node })
		case TransferLeader:
			sh.Leader = a.Node
		}
	}
	return s
}

// catchingUp reports whether some shard has a non-voter on a live node that
// has not caught up yet: a round without actions still changes the state.
func catchingUp(s ClusterState) bool {
	live := map[string]bool{}
	for _, n := range s.Nodes {
		live[n.ID] = n.Live && !n.Dead
	}
	for _, sh := range s.Shards {
		for _, r := range sh.Replicas {
			if !r.Voter && !r.CaughtUp && live[r.Node] {
				return true
			}
		}
	}
	return false
}

// layout prints each shard's replicas (leader starred, non-voters marked)
// and each node's replica and leader counts.
func layout(s ClusterState) string {
	var b strings.Builder
	shards := slices.Clone(s.Shards)
	sort.Slice(shards, func(i, j int) bool { return shards[i].ID < shards[j].ID })
	load, leads := map[string]int{}, map[string]int{}
	for _, sh := range shards {
		var rs []string
		for _, r := range sh.Replicas {
			load[r.Node]++
			name := r.Node
			if r.Node == sh.Leader {
				name += "*"
			}
			if !r.Voter {
				name += "(non-voter)"
			}
			rs = append(rs, name)
		}
		sort.Strings(rs)
		if sh.Leader != "" {
			leads[sh.Leader]++
		}
		fmt.Fprintf(&b, "shard %d (%s): %s\n", sh.ID, sh.Keyspace, strings.Join(rs, " "))
	}
	ids := make([]string, 0, len(s.Nodes))
	for _, n := range s.Nodes {
		ids = append(ids, n.ID)
	}
	sort.Strings(ids)
	for _, id := range ids {
		fmt.Fprintf(&b, "node %s: %d replicas, %d leaders\n", id, load[id], leads[id])
	}
	return b.String()
}
