package placement

import (
	"fmt"
	"math"
	"sort"
)

// NodeState is one node as the placement controller sees it in one round.
type NodeState struct {
	ID       string   // unique, non-empty
	Locality Locality // must be valid to be permitted by any policy
	// Live: the node is reachable now. A node that is not live and not Dead
	// is down within the controller's grace period: its replicas count
	// toward the replica count but not toward quorum, and are not replaced.
	Live bool
	// Dead: the node has been down longer than the controller's grace
	// period. Its replicas are replaced and removed; it gets nothing new.
	// A Dead node is never live, whatever Live says.
	Dead bool
	// Draining: an operator asked to move everything off the node. It gets
	// no new replicas, loses its leaderships and, once each of its replicas
	// has a replacement, loses those too.
	Draining bool
	// DiskUsedFraction is the used share of the node's disk, 0 to 1. A node
	// above DiskFullFraction gets no new replicas; it keeps the ones it has.
	DiskUsedFraction float64
}

// DiskFullFraction is the disk use above which a node gets no new replica.
const DiskFullFraction = 0.9

// ReplicaState is one member of a shard's Raft configuration.
type ReplicaState struct {
	Node  string // node ID
	Voter bool   // false: a non-voter (learner) being caught up
	// CaughtUp: for a non-voter, close enough to the leader to be promoted.
	// Ignored for voters.
	CaughtUp bool
	// Damaged: the node reports this replica's stored data failed
	// verification and does not run it. Plan treats it as a replica on a
	// dead node: it is removed (while a quorum of live voters remains) and
	// replaced, possibly on the same node once the damaged copy is deleted.
	Damaged bool
}

// ShardState is one shard as read from its leader.
type ShardState struct {
	ID       uint64
	Keyspace string
	Replicas []ReplicaState // the shard's actual Raft configuration
	Leader   string         // node ID of the leader, "" when none is known
	// Busy: a membership change or leadership transfer for this shard is
	// in flight, or has finished since its replicas reported. Plan plans
	// nothing for a busy shard and counts it against MaxMovesInFlight. For
	// a transfer, Leader should name the node leadership is moving to, so
	// that the leaderships of other shards are balanced against where it
	// will be.
	Busy bool
	// LeaderHeld: the shard's leadership moved (a transfer or an election)
	// less than the controller's minimum interval between transfers ago.
	// Balance (rule 8) leaves its leader where it is and reports the shard
	// Moving if it would move it; a leader that must go (rules 1 and 5) or
	// that is outside the preferred region (rule 7) still moves.
	LeaderHeld bool
}

// ClusterState is everything Plan looks at: nodes, policies by keyspace and
// shards. Plan never modifies it, and its result does not depend on the
// order of Nodes, Shards or any shard's Replicas.
type ClusterState struct {
	Nodes    []NodeState
	Policies map[string]Policy // keyspace -> policy
	Shards   []ShardState
}

// Defaults of PlanConfig.
const (
	// DefaultMaxMovesInFlight is the default cluster-wide bound on shards
	// with a membership change in flight.
	DefaultMaxMovesInFlight = 4
	// DefaultMaxLeaderTransfers is the default bound on leader transfers
	// for preference and balance in one plan.
	DefaultMaxLeaderTransfers = 64
)

// PlanConfig tunes Plan. The zero value means the defaults.
type PlanConfig struct {
	// MaxMovesInFlight bounds the shards with a membership change in flight
	// across the cluster: the Busy shards plus the membership changes
	// (AddNonVoter, PromoteVoter, RemoveReplica) in one plan never exceed
	// it. TransferLeader is not counted. 0 means DefaultMaxMovesInFlight;
	// negative is invalid.
	MaxMovesInFlight int
	// MaxLeaderTransfers bounds the TransferLeader actions of rules 7 and 8
	// (leader preference and balance) in one plan, so that a rebalance does
	// not move thousands of leaderships at once. Transfers off a node
	// outside the policy, a dead or draining node, or a replica about to be
	// removed are never held back. 0 means DefaultMaxLeaderTransfers;
	// negative is invalid.
	MaxLeaderTransfers int
}

// DefaultPlanConfig returns the configuration Plan uses for a zero PlanConfig.
func DefaultPlanConfig() PlanConfig {
	return PlanConfig{MaxMovesInFlight: DefaultMaxMovesInFlight, MaxLeaderTransfers: DefaultMaxLeaderTransfers}
}

// maxMoves is the effective MaxMovesInFlight.
func (cfg PlanConfig) maxMoves() int {
	if cfg.MaxMovesInFlight == 0 {
		return DefaultMaxMovesInFlight
	}
	return cfg.MaxMovesInFlight
}

// maxTransfers is the effective MaxLeaderTransfers.
func (cfg PlanConfig) maxTransfers() int {
	if cfg.MaxLeaderTransfers == 0 {
		return DefaultMaxLeaderTransfers
	}
	return cfg.MaxLeaderTransfers
}

// ActionKind is what an Action asks the controller to do.
type ActionKind int

// Action kinds.
const (
	// AddNonVoter adds Node to the shard as a non-voter (learner).
	AddNonVoter ActionKind = iota + 1
	// PromoteVoter makes the caught-up non-voter on Node a voter.
	PromoteVoter
	// RemoveReplica removes Node's replica (voter or non-voter) from the shard.
	RemoveReplica
	// TransferLeader moves the shard's leadership to the voter on Node.
	TransferLeader
)

// ChangesMembership reports whether the action changes the shard's Raft
// configuration (everything but TransferLeader).
func (k ActionKind) ChangesMembership() bool {
	return k == AddNonVoter || k == PromoteVoter || k == RemoveReplica
}

// Action is one step for one shard.
type Action struct {
	Kind     ActionKind
	Shard    uint64
	Keyspace string
	Node     string // the node added, promoted, removed, or the new leader
	Reason   string // why, in words
}

// ShardStatus sums up a shard's state after planning.
type ShardStatus int

// Shard statuses.
const (
	// Conforming: every replica is permitted, live and a voter, the shard
	// has exactly Policy.Replicas voters, its spread cannot improve and
	// nothing is planned. Problems is empty.
	Conforming ShardStatus = iota
	// Moving: an action is planned, a change is in flight
	// (Busy), a non-voter is catching up, or a needed change waits for
	// room under MaxMovesInFlight.
	Moving
	// UnderReplicated: fewer permitted voters than the policy wants (or one
	// is down within the grace period) and nothing can be added now.
	UnderReplicated
	// Blocked: the shard cannot progress: no leader, no quorum of live
	// voters, no valid policy, a configuration Plan cannot read, a replica
	// outside the policy or a leader that cannot be moved yet, or a drain
	// that finds no replacement.
	Blocked
)

// ShardReport is the outcome of planning for one shard.
type ShardReport struct {
	Shard    uint64
	Keyspace string
	Status   ShardStatus
	Problems []string // readable, one per problem; empty when Conforming
}

// Plan is one round of placement decisions. Actions and Shards are sorted by
// shard ID; a shard has at most one action and exactly one report.
type Plan struct {
	Actions []Action
	Shards  []ShardReport
}

// Plan decides the next actions for every shard in s. It is pure and
// deterministic: the same state gives the same plan whatever the order of
// its slices and maps. The placement controller executes the actions and
// calls Plan again next round with the new state.
//
// Each shard gets at most one action, from the first rule that applies:
//
//  1. Residency of the leader: a leader on a node the policy does not permit,
//     or on a Dead node, is moved (TransferLeader) to the best permitted live
//     voter: highest-ranked LeaderPreference region, then not draining, then
//     fewest leaderships, then smallest ID. Without such a voter the shard
//     reports the problem and the later rules may still bring a permitted
//     voter in; leadership never goes to a node outside the policy. A leader
//     on a draining node moves the same way when a voter that is not
//     draining can take over.
//  2. A permitted, live, caught-up non-voter (not draining) is promoted
//     (PromoteVoter).
//  3. With fewer permitted, non-dead, non-draining voters than
//     Policy.Replicas and no such non-voter pending, a non-voter is added
//     (AddNonVoter) on the best target as ChooseReplicas ranks it, with the
//     remaining permitted voters as existing replicas. A target is a
//     permitted, live, not Dead, not draining node under DiskFullFraction
//     that holds no replica of the shard. Without one the shard is
//     UnderReplicated and the problem names the permitted live nodes and the
//     policy's residency; no node outside the policy is ever used. A voter
//     down within the grace period is not replaced (only reported): its node
//     is expected back.
//  4. A replica outside the policy (voter or non-voter, or on a node Plan
//     does not know) is removed (RemoveReplica), non-voters first, even if
//     that leaves the shard under-replicated, provided the new configuration
//     keeps a quorum of live voters. The leader is never removed: rule 1
//     moves it first.
//     An outside voter waits while a permitted non-voter is catching up
//     (rule 3 added it as its replacement), so the shard keeps its replica
//     count through a migration when a permitted node can take over.
//  5. A Dead or draining non-voter, a Dead voter, or, with more voters than
//     Policy.Replicas, the worst voter is removed if the new configuration
//     keeps a quorum of live voters. Worst: dead, then down, then draining,
//     then most replicas of the shard in its region, then in its zone, then
//     not the leader, then most replicas on the node, then largest ID. When
//     the worst voter is the leader, leadership moves first.
//  6. Spread: when swapping the worst voter for the best target would put
//     the voters in strictly fewer-shared regions (or, regions being equal,
//     zones), a non-voter is added on that target; rule 2 then promotes it
//     and rule 5 removes the worse voter. Only for a shard whose voters are
//     exactly Policy.Replicas permitted live nodes and has no non-voter.
//  7. Leader preference: leadership moves to the best-ranked
//     LeaderPreference region holding a permitted live voter when the leader
//     is not there.
//  8. Balance, lowest priority. On the same shards as rule 6, a replica
//     moves (AddNonVoter, then rules 2 and 5) from the shard's most loaded
//     voter other than the leader to the least loaded target when that
//     keeps the spread, the two differ by at least 2 replicas and one of
//     them is more than 1 away from the mean load of the policy's permitted,
//     live, non-draining nodes. Otherwise leadership moves to the permitted
//     live voter in the leader's preference rank with the fewest
//     leaderships when the leader leads more shards than the mean of the
//     policy's permitted, live, non-draining nodes and at least 2 more than
//     that voter (transfers are cheap, so they even out further than the
//     replicas' band). That is the hysteresis: after the move the target
//     leads at most as many as the source, so the move back is never
//     planned from the state the move leaves, and only a node above the
//     mean gives leaderships away. Leaderships are balanced only in a quiet
//     cluster: while any shard is Busy or has an action of rules 1 to 6 or
//     a replica move to make, the loads are about to change, and balancing
//     against them would move leaders twice. A LeaderHeld shard's leader
//     stays. Each balance step strictly lowers the sum of squared loads
//     (replicas or leaderships), so balancing ends.
//
// Safety, always: a target (added, promoted or new leader) is permitted,
// live and not Dead; nothing is planned for a Busy shard (reported Moving);
// no membership change is planned for a shard without a known leader or
// without a quorum of live voters (reported Blocked); no RemoveReplica
// leaves fewer live voters than a majority of the remaining voters; and the
// membership changes in the plan plus the Busy shards never exceed
// MaxMovesInFlight. When the bound leaves room for fewer changes than
// needed, the more urgent rule goes first (lower rule number, then lower
// shard ID) and the rest wait, reported Moving; a waiting shard may still
// get a TransferLeader from rules 7 and 8. Those transfers are bounded by
// MaxLeaderTransfers; one held back leaves no problem behind.
//
// Loads are the replicas (voters and non-voters) and leaderships each node
// holds across all keyspaces. A replica the rules will remove (outside its
// policy, dead, draining, or the worst beyond the replica count once
// pending non-voters are promoted) no longer counts, so a move under way is
// neither repeated by another shard nor undone. Plan counts the actions it
// plans as it goes, so one plan does not send every new replica to the
// same node.
//
// Errors wrap ErrInvalidInput and are reserved for state Plan cannot read
// as a whole: an empty or duplicate node ID, a DiskUsedFraction outside
// 0..1, a duplicate shard ID or a negative bound in cfg. A shard whose
// own description is inconsistent (a replica listed twice or with an empty
// node ID, a leader that is not one of its voters), whose keyspace has no
// policy or whose policy is invalid is reported Blocked with the reason.
func (c *Catalogue) Plan(s ClusterState, cfg PlanConfig) (Plan, error) {
	if err := checkPlanInput(s, cfg); err != nil {
		return Plan{}, err
	}
	p := c.newPlanner(s, cfg)

	order := make([]int, len(s.Shards))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return s.Shards[order[a]].ID < s.Shards[order[b]].ID })

	// First pass: how urgent each shard is, with the loads as they are,
	// and whether the cluster is quiet enough to balance leaderships.
	urgency := make([]int, len(s.Shards))
	for _, i := range order {
		sh := &s.Shards[i]
		if sh.Busy {
			p.quiet = false
			continue
		}
		e := p.evaluate(sh)
		urgency[i] = e.urgency()
		if e.main != nil {
			p.quiet = false
		}
	}

	// Second pass, most urgent first: decide with the loads updated by
	// every action decided before, within the in-flight bound.
	work := make([]int, 0, len(order))
	for _, i := range order {
		if !s.Shards[i].Busy {
			work = append(work, i)
		}
	}
	sort.SliceStable(work, func(a, b int) bool { return urgency[work[a]] < urgency[work[b]] })
	reports := make([]ShardReport, len(s.Shards))
	actions := make([]*Action, len(s.Shards))
	for _, i := range order {
		if sh := &s.Shards[i]; sh.Busy {
			reports[i] = ShardReport{Shard: sh.ID, Keyspace: sh.Keyspace, Status: Moving,
				Problems: []string{"a change is in flight"}}
		}
	}
	evals := make([]*shardEval, len(s.Shards))
	for _, i := range work {
		evals[i] = p.evaluate(&s.Shards[i])
		actions[i], reports[i] = p.decide(evals[i])
	}
	if p.quiet {
		p.planBalance(order, evals, actions, reports)
	}

	var out Plan
	out.Shards = make([]ShardReport, 0, len(order))
	for _, i := range order {
		if actions[i] != nil {
			out.Actions = append(out.Actions, *actions[i])
		}
		out.Shards = append(out.Shards, reports[i])
	}
	return out, nil
}

// planBalance adds rule 8's leadership transfers, in a quiet cluster, to
// the shards with nothing planned, and reports them.
func (p *planner) planBalance(order []int, evals []*shardEval, actions []*Action, reports []ShardReport) {
	var cands []*shardEval
	for _, i := range order {
		if evals[i] != nil && actions[i] == nil {
			cands = append(cands, evals[i])
		}
	}
	moves := p.balanceLeaders(cands)
	for _, i := range order {
		e := evals[i]
		if e == nil || actions[i] != nil {
			continue
		}
		if a := moves[e]; a != nil {
			actions[i] = a
			reports[i].Status = Moving
		} else if len(e.problems) > len(reports[i].Problems) {
			reports[i].Problems = e.problems
			if reports[i].Status == Conforming {
				reports[i].Status = Moving
			}
		}
	}
}

// checkPlanInput rejects state Plan cannot read as a whole.
func checkPlanInput(s ClusterState, cfg PlanConfig) error {
	if cfg.MaxMovesInFlight < 0 {
		return fmt.Errorf("%w: MaxMovesInFlight %d: want 0 (default %d) or more", ErrInvalidInput, cfg.MaxMovesInFlight, DefaultMaxMovesInFlight)
	}
	if cfg.MaxLeaderTransfers < 0 {
		return fmt.Errorf("%w: MaxLeaderTransfers %d: want 0 (default %d) or more", ErrInvalidInput, cfg.MaxLeaderTransfers, DefaultMaxLeaderTransfers)
	}
	seen := make(map[string]bool, len(s.Nodes))
	for i := range s.Nodes {
		n := &s.Nodes[i]
		switch {
		case n.ID == "":
			return fmt.Errorf("%w: node %d has an empty ID", ErrInvalidInput, i)
		case seen[n.ID]:
			return fmt.Errorf("%w: node ID %q appears twice", ErrInvalidInput, clip(n.ID))
		case math.IsNaN(n.DiskUsedFraction) || n.DiskUsedFraction < 0 || n.DiskUsedFraction > 1:
			return fmt.Errorf("%w: node %q: DiskUsedFraction %v: want 0..1", ErrInvalidInput, clip(n.ID), n.DiskUsedFraction)
		}
		seen[n.ID] = true
	}
	ids := make(map[uint64]bool, len(s.Shards))
	for i := range s.Shards {
		id := s.Shards[i].ID
		if ids[id] {
			return fmt.Errorf("%w: shard ID %d appears twice", ErrInvalidInput, id)
		}
		ids[id] = true
	}
	return nil
}
