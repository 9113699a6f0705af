package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	pb "github.com/clover-kv/clover/api/cloverv1"

	"github.com/clover-kv/clover/internal/raftmux"
	"github.com/clover-kv/clover/raftfsm"
)

// replica is this node's member of one shard's Raft group (the meta group is
// shard 0).
type replica struct {
	id      uint64
	node    *Server
	raft    *raft.Raft
	fsm     *raftfsm.FSM
	logs    *raftfsm.LogStore
	trans   *raftmux.Transport
	snapDir string
	prop    *proposer
	logger  *slog.Logger

	applied appliedNotifier
	// readyTerm is the term in which this leader has committed and applied an
	// entry of its own (a barrier); read-index needs it.
	readyTerm atomic.Uint64
	readyMu   sync.Mutex

	// frIndex is the last read index confirmed by the leader for
	// bounded-staleness reads; the confirmation began at frAt.
	frMu    sync.Mutex
	frIndex uint64
	frAt    time.Time

	closeOnce  sync.Once
	stopped    chan struct{}
	handedOver bool // only touched by watchLeadership
}

// replicaGuard decides residency for one shard at the transport: entries and
// snapshots go only to permitted nodes; inbound connections are accepted only
// while this node may hold the shard.
type replicaGuard struct {
	s     *Server
	shard uint64
}

func (g replicaGuard) AllowDial(target raft.ServerAddress) error {
	return g.s.permitShardOnRaftAddr(g.shard, string(target))
}

func (g replicaGuard) AllowAccept() error {
	return g.s.permitShardHere(g.shard)
}

// openReplica opens (and, for a new group, bootstraps) this node's replica of a
// shard. initial lists the bootstrap configuration when this node is one of
// the shard's initial replicas and has no state yet.
func (s *Server) openReplica(id uint64, initial []raft.Server, onApply func(*replica)) (*replica, error) {
	r := &replica{id: id, node: s, logger: s.logger.With("shard", id), stopped: make(chan struct{})}
	r.applied.init()
	// Check every stored record before the replica serves or votes: damage
	// found here keeps it closed (see damage.go).
	s.mu.Lock()
	verified := s.verified[id]
	delete(s.verified, id)
	s.mu.Unlock()
	if !verified {
		if _, err := raftfsm.VerifyShard(s.db, id); err != nil {
			return nil, fmt.Errorf("shard %d: verify stored data: %w", id, err)
		}
	}
	var err error
	r.fsm, err = raftfsm.New(s.db, id, raftfsm.Options{
		Guard: func() error { return s.permitShardHere(id) },
		OnApply: func(index uint64, cmds []raftfsm.Command) {
			// An entry whose commands all failed, or wrote no key (a
			// barrier, a proposer's tail, audit entries), changed no data;
			// a configuration entry or a restore (nil) counts as a change.
			r.applied.advanceTo(index, cmds == nil || writesData(cmds))
			if onApply != nil {
				onApply(r)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("shard %d: open state machine: %w", id, err)
	}
	r.applied.advanceTo(r.fsm.AppliedIndex(), true)
	r.logs, err = raftfsm.NewLogStore(s.db, id)
	if err != nil {
		return nil, fmt.Errorf("shard %d: open log store: %w", id, err)
	}
	cache, err := raft.NewLogCache(1024, r.logs)
	if err != nil {
		return nil, err
	}
	r.snapDir = s.snapDir(id)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(r.snapDir, 2, hclogFor(r.logger, "snapshot", s.departures))
	if err != nil {
		return nil, fmt.Errorf("shard %d: open snapshot store: %w", id, err)
	}
	r.trans, err = s.mux.Transport(id, replicaGuard{s: s, shard: id}, raftmux.TransportConfig{Logger: hclogFor(r.logger, "transport", s.departures), MaxRPCsInFlight: 1})
	if err != nil {
		return nil, fmt.Errorf("shard %d: register transport: %w", id, err)
	}

	conf := s.raftConfig(r.logger)
	// The FSM persists its own state with its applied index, so a restart
	// need not restore the last snapshot, unless the snapshot is ahead of the
	// state the FSM has on disk.
	needsRestore, err := r.fsm.NeedsRestore(snaps)
	if err != nil {
		s.mux.Unregister(id)
		return nil, fmt.Errorf("shard %d: %w", id, err)
	}
	conf.NoSnapshotRestoreOnStart = !needsRestore
	hasState, err := raft.HasExistingState(cache, r.logs, snaps)
	if err != nil {
		s.mux.Unregister(id)
		return nil, fmt.Errorf("shard %d: read raft state: %w", id, err)
	}
	r.raft, err = raft.NewRaft(conf, r.fsm, cache, r.logs, snaps, r.trans)
	if err != nil {
		s.mux.Unregister(id)
		return nil, fmt.Errorf("shard %d: start raft: %w", id, err)
	}
	if !hasState && len(initial) > 0 {
		if err := r.raft.BootstrapCluster(raft.Configuration{Servers: initial}).Error(); err != nil &&
			!errors.Is(err, raft.ErrCantBootstrap) {
			r.close()
			return nil, fmt.Errorf("shard %d: bootstrap: %w", id, err)
		}
	}
	r.prop = newProposer(r)
	go r.watchLeadership()
	return r, nil
}

func (s *Server) raftConfig(logger *slog.Logger) *raft.Config {
	rc := s.cfg.Raft
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(s.cfg.NodeID)
	c.HeartbeatTimeout = rc.HeartbeatTimeout
	c.ElectionTimeout = rc.ElectionTimeout
	c.LeaderLeaseTimeout = rc.LeaderLeaseTimeout
	c.CommitTimeout = rc.CommitTimeout
	c.MaxAppendEntries = rc.MaxAppendEntries
	c.SnapshotThreshold = rc.SnapshotThreshold
	c.SnapshotInterval = rc.SnapshotInterval
	c.TrailingLogs = rc.TrailingLogs
	c.BatchApplyCh = true
	c.Logger = hclogFor(logger, "raft", s.departures)
	return c
}

// close stops the replica's Raft instance and transport; its data stays.
func (r *replica) close() {
	r.closeOnce.Do(func() {
		close(r.stopped)
		if r.prop != nil {
			r.prop.stop()
		}
		if err := r.raft.Shutdown().Error(); err != nil {
			r.logger.Warn("raft shutdown", "err", err)
		}
		r.node.mux.Unregister(r.id)
		_ = r.trans.Close()
	})
}

// destroy closes the replica and deletes its data: log, state, snapshots.
// Deleting the key range is followed by a compaction of it, so no live
// sstable still holds the shard's data.
func (r *replica) destroy() error {
	r.close()
	if err := raftfsm.DeleteShard(r.node.db, r.id); err != nil {
		return fmt.Errorf("shard %d: delete data: %w", r.id, err)
	}
	if err := os.RemoveAll(r.snapDir); err != nil {
		return fmt.Errorf("shard %d: delete snapshots: %w", r.id, err)
	}
	return nil
}

func (r *replica) isLeader() bool { return r.raft.State() == raft.Leader }

// leaderID is the node ID of the leader this replica knows, or "".
func (r *replica) leaderID() string {
	_, id := r.raft.LeaderWithID()
	return string(id)
}

// leaderHintAddr is the gRPC address of the leader this replica knows, when
// the shard's policy permits that node ("" otherwise): a client or a peer
// must never be pointed at a node outside the policy with user data.
func (r *replica) leaderHintAddr() string {
	id := r.leaderID()
	if id == "" || r.node.permitShardOnNode(r.id, id) != nil {
		return ""
	}
	return r.node.grpcAddrOf(id)
}

// leaderReadIndex is readIndex without the wait: the confirmed commit index a
// follower needs to have applied to serve a linearizable read.
func (r *replica) leaderReadIndex(ctx context.Context) (uint64, error) {
	if !r.isLeader() {
		return 0, notLeaderError(r.id, r.leaderHintAddr())
	}
	term := r.raft.CurrentTerm()
	if r.readyTerm.Load() != term {
		if err := r.barrier(ctx, term); err != nil {
			return 0, err
		}
	}
	ci := r.raft.CommitIndex()
	urgent := r.trans.Urgent()
	err := waitFuture(ctx, r.raft.VerifyLeader())
	urgent()
	if err != nil || r.raft.CurrentTerm() != term {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, notLeaderError(r.id, r.leaderHintAddr())
	}
	return ci, nil
}

// readIndex implements a linearizable read barrier on the leader: take the
// commit index, confirm leadership with one heartbeat round (hashicorp/raft
// shares a round among concurrent callers), and wait until that index is
// applied. A new leader first commits an entry of its own term (a barrier) so
// its commit index is current.
func (r *replica) readIndex(ctx context.Context) error {
	ci, err := r.leaderReadIndex(ctx)
	if err != nil {
		return err
	}
	return r.applied.wait(ctx, ci)
}

func (r *replica) barrier(ctx context.Context, term uint64) error {
	r.readyMu.Lock()
	defer r.readyMu.Unlock()
	if r.readyTerm.Load() == term {
		return nil
	}
	timeout := r.node.cfg.Raft.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	// An empty entry rather than raft.Barrier: barrier entries never reach
	// the state machine, so its applied index could stay below the commit
	// index that readers wait for.
	// A group without an audit salt yet has its first leader's barrier
	// draw one.
	entry := emptyEntry
	if r.fsm.AuditSalt() == nil {
		entry = raftfsm.EncodeEntry(nil, []raftfsm.Command{{AuditSalt: newSalt()}})
	}
	if err := waitFuture(ctx, r.raft.Apply(entry, timeout)); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return notLeaderError(r.id, r.leaderHintAddr())
		}
		return unavailablef("shard %d: leader barrier: %v", r.id, err)
	}
	if r.raft.CurrentTerm() == term {
		r.readyTerm.Store(term)
	}
	return nil
}

// followerRead makes this replica ready to serve a read whose data is no
// older than maxStale: every write committed before a moment at most
// maxStale ago is applied here. The replica uses a read index confirmed at
// most maxStale ago: a leader confirms its own (one heartbeat round), a
// follower asks the leader (Internal.ReadIndex). Concurrent reads share one
// confirmation, and reads within maxStale of it need none, so under load a
// bounded-staleness read costs no round trip at the leader or a follower.
func (r *replica) followerRead(ctx context.Context, maxStale time.Duration) error {
	idx, err := r.boundedReadIndex(ctx, maxStale)
	if err != nil {
		return err
	}
	if r.applied.reached(idx) {
		return nil // no catch-up wait (and its timer) to set up
	}
	if r.isLeader() {
		return r.applied.wait(ctx, idx)
	}
	// The follower learns the commit index with the leader's next append
	// (at most CommitTimeout after the last write). Waiting longer than a
	// short while costs more than serving the read at the leader.
	wctx, cancel := context.WithTimeout(ctx, min(maxStale, followerCatchUpWait))
	defer cancel()
	if err := r.applied.wait(wctx, idx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return notLeaderError(r.id, r.leaderHintAddr())
	}
	return nil
}

// boundedReadIndex returns a read index confirmed by the leader at most
// maxStale ago: the commit index the leader held when the confirmation
// began. It stays valid for maxStale after that moment whoever leads since.
func (r *replica) boundedReadIndex(ctx context.Context, maxStale time.Duration) (uint64, error) {
	r.frMu.Lock()
	defer r.frMu.Unlock()
	if !r.frAt.IsZero() && time.Since(r.frAt) <= maxStale {
		return r.frIndex, nil
	}
	sent := time.Now()
	if r.isLeader() {
		ci, err := r.leaderReadIndex(ctx)
		if err != nil {
			return 0, err
		}
		r.frIndex, r.frAt = ci, sent
		return ci, nil
	}
	addr := r.leaderHintAddr()
	if addr == "" {
		return 0, notLeaderError(r.id, "")
	}
	cc, err := r.node.peers.get(addr)
	if err != nil {
		return 0, notLeaderError(r.id, addr)
	}
	rctx, cancel := context.WithTimeout(ctx, max(maxStale, 100*time.Millisecond))
	defer cancel()
	resp, err := pb.NewInternalClient(cc).ReadIndex(rctx, &pb.ReadIndexRequest{ShardId: r.id})
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, notLeaderError(r.id, addr)
	}
	r.frIndex, r.frAt = resp.Index, sent
	return resp.Index, nil
}

// followerCatchUpWait bounds how long a follower read waits for the
// replica to apply the leader's read index before it is forwarded.
const followerCatchUpWait = 10 * time.Millisecond

// emptyEntry is a Raft entry with no commands: it commits and applies,
// changing nothing.
var emptyEntry = raftfsm.EncodeEntry(nil, nil)

// watchLeadership commits an entry of its own as soon as this replica
// becomes leader, so reads at the new leader (and follower reads, whose
// commit index would otherwise point at raft's no-op entry, which the state
// machine never sees) need not wait for a write.
func (r *replica) watchLeadership() {
	for {
		select {
		case isLeader := <-r.raft.LeaderCh():
			if isLeader {
				ctx, cancel := context.WithTimeout(context.Background(), r.node.cfg.Raft.ApplyTimeout)
				if err := r.barrier(ctx, r.raft.CurrentTerm()); err != nil {
					r.logger.Debug("leader barrier", "err", err)
				}
				cancel()
				r.handOverToIntendedLeader()
			}
		case <-r.stopped:
			return
		}
	}
}

// handOverToIntendedLeader moves leadership of a newly created group to its
// intended first leader (the placement spreads those across nodes), once:
// the first election of a group is won by whichever replica times out first.
func (r *replica) handOverToIntendedLeader() {
	if r.id == metaShardID || r.handedOver || r.fsm.AppliedIndex() > 8 {
		return
	}
	r.handedOver = true
	c := r.node.catalog()
	ref, ok := c.shards[r.id]
	if !ok || len(ref.shard.Initial) == 0 {
		return
	}
	want := ref.shard.Initial[0]
	n, ok := c.nodes[want]
	if want == r.node.cfg.NodeID || !ok || !n.Live || r.node.departures.leaving(want) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.node.cfg.Raft.ApplyTimeout)
	defer cancel()
	err := r.transferLeadership(ctx, func() raft.Future {
		return r.raft.LeadershipTransferToServer(raft.ServerID(want), raft.ServerAddress(n.RaftAddr))
	})
	if err != nil {
		r.logger.Debug("leadership hand-over", "to", want, "err", err)
	}
}

// transferLeadership runs transfer (a raft leadership transfer) once no
// client command is in flight, holding new ones back meanwhile (see
// proposer.quiesce), and waits for it or ctx.
func (r *replica) transferLeadership(ctx context.Context, transfer func() raft.Future) error {
	release, err := r.prop.quiesce(ctx)
	if err != nil {
		return err
	}
	defer release()
	return waitFuture(ctx, transfer())
}

// appliedNotifier lets readers wait until the state machine reaches an index.
// It also knows the index of the last applied entry that changed data, so a
// leader can give followers a read index below trailing entries that changed
// nothing (see readIndexFor).
type appliedNotifier struct {
	mu      sync.Mutex
	index   uint64
	changed uint64        // last applied index whose entry changed data
	ch      chan struct{} // closed and replaced on every advance
}

func (a *appliedNotifier) init() { a.ch = make(chan struct{}) }

// advanceTo records that index i is applied; changed says whether its entry
// changed data.
func (a *appliedNotifier) advanceTo(i uint64, changed bool) {
	a.mu.Lock()
	if changed {
		a.changed = max(a.changed, i, a.index)
	}
	if i > a.index {
		a.index = i
		close(a.ch)
		a.ch = make(chan struct{})
	}
	a.mu.Unlock()
}

// readIndexFor lowers the read index ci to the last entry at or below it
// that changed data, when this replica has applied ci: the entries after
// that one changed nothing, so the data a reader sees there is the data at
// ci. A follower can then serve a read before it learns that those trailing
// entries (a proposer's tail, a new leader's barrier) committed.
func (a *appliedNotifier) readIndexFor(ci uint64) uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.index >= ci && a.changed < ci {
		return a.changed
	}
	return ci
}

// reached reports whether the state machine has applied index i.
func (a *appliedNotifier) reached(i uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.index >= i
}

// wait returns once index i is applied; it touches ctx only if it has to
// block.
func (a *appliedNotifier) wait(ctx context.Context, i uint64) error {
	for {
		a.mu.Lock()
		idx, ch := a.index, a.ch
		a.mu.Unlock()
		if idx >= i {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// writesData reports whether some command of cmds writes a key.
func writesData(cmds []raftfsm.Command) bool {
	for _, c := range cmds {
		if len(c.Ops) > 0 {
			return true
		}
	}
	return false
}
