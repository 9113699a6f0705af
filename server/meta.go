package server

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/raft"

	pb "github.com/clover-kv/clover/api/cloverv1"

	"github.com/clover-kv/clover/raftfsm"
)

// metaLoop runs the meta-group leader's duties: keep node records in step with
// gossip (addresses, liveness) and grow the meta group as nodes join. It acts
// on membership events and on a timer.
func (s *Server) metaLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.gossip.changed:
		case <-tick.C:
		}
		if !s.meta.isLeader() {
			continue
		}
		// Only members whose claims checked out (see attestedMembers).
		members := s.attestedMembers(ctx, s.gossip.members())
		inMeta, err := s.reconcileMetaMembers(ctx, members)
		if err != nil && ctx.Err() == nil {
			s.logger.Warn("meta: reconcile meta group members", "err", err)
		}
		if err := s.reconcileNodes(ctx, members, inMeta); err != nil && ctx.Err() == nil {
			s.logger.Warn("meta: reconcile nodes", "err", err)
		}
		s.ctrl.poke()
	}
}

// reconcileNodes records every gossip member that is in the meta group with
// its addresses and marks recorded nodes that gossip no longer sees as not
// live. A node is recorded live only once it replicates the catalogue, so
// replicas are never placed on a node that cannot know about them yet.
func (s *Server) reconcileNodes(ctx context.Context, members map[string]gossipMeta, inMeta map[string]bool) error {
	c := s.catalog()
	var ops []raftfsm.Op
	var events []historyEvent
	ids := make([]string, 0, len(members))
	for id := range members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if !inMeta[id] {
			continue
		}
		m := members[id]
		want := nodeRecord{ID: m.ID, Locality: m.Locality, GRPCAddr: m.GRPC, RaftAddr: m.Raft, GossipAddr: m.Gossip, Live: true}
		have, ok := c.nodes[id]
		if ok && have.Locality != want.Locality {
			// A recorded node's jurisdiction never changes through gossip.
			s.logger.Error("meta: node announces a different locality than recorded; ignoring it",
				"member", id, "recorded", have.Locality.String(), "announced", want.Locality.String())
			continue
		}
		if !ok || *have != want {
			ops = append(ops, putOp(metaNodeKey(id), mustJSON(want)))
			switch {
			case !ok:
				events = append(events, historyEvent{Node: id, Action: "node-join", Reason: "recorded at " + want.Locality.String()})
			case !have.Live:
				events = append(events, historyEvent{Node: id, Action: "node-live", Reason: "seen again by gossip"})
			}
		}
	}
	for _, n := range c.sortedNodes() {
		if _, alive := members[n.ID]; (!alive || !inMeta[n.ID]) && n.Live {
			down := *n
			down.Live = false
			ops = append(ops, putOp(metaNodeKey(n.ID), mustJSON(down)))
			events = append(events, historyEvent{Node: n.ID, Action: "node-down", Reason: "no longer seen by gossip"})
		}
	}
	if len(ops) == 0 {
		return nil
	}
	_, err := s.metaPropose(ctx, raftfsm.Command{Ops: ops, Audit: s.historyLeaf(ctx, events...)})
	return err
}

// reconcileMetaMembers adds every gossip member to the meta group: voters
// (covering distinct regions first) up to MetaVoters, non-voters after that.
// It returns the node IDs in the meta configuration.
func (s *Server) reconcileMetaMembers(ctx context.Context, members map[string]gossipMeta) (map[string]bool, error) {
	fut := s.meta.raft.GetConfiguration()
	if err := fut.Error(); err != nil {
		return nil, err
	}
	have := map[string]raft.Server{}
	voters := 0
	votingRegions := map[string]bool{}
	for _, srv := range fut.Configuration().Servers {
		have[string(srv.ID)] = srv
		if srv.Suffrage == raft.Voter {
			voters++
			if m, ok := members[string(srv.ID)]; ok {
				votingRegions[m.Locality.Country+"/"+m.Locality.Region] = true
			}
		}
	}
	ids := make([]string, 0, len(members))
	for id := range members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	// Members in regions without a voter first.
	sort.SliceStable(ids, func(i, j int) bool {
		ri, rj := members[ids[i]].Locality, members[ids[j]].Locality
		return !votingRegions[ri.Country+"/"+ri.Region] && votingRegions[rj.Country+"/"+rj.Region]
	})
	inMeta := map[string]bool{}
	var errs []error
	for _, id := range ids {
		m := members[id]
		srv, in := have[id]
		var err error
		switch {
		case in && string(srv.Address) != m.Raft:
			err = s.addMetaMember(ctx, m, srv.Suffrage == raft.Voter) // moved: re-add at the new address
		case !in:
			// Every node joins as a non-voter; it is promoted once it has
			// caught up, so a node whose Raft traffic does not flow never
			// becomes a voter the quorum depends on.
			err = s.addMetaMember(ctx, m, false)
		case srv.Suffrage == raft.Nonvoter && voters < s.cfg.MetaVoters && s.metaCaughtUp(ctx, m):
			if err = s.addMetaMember(ctx, m, true); err == nil {
				voters++
			}
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		inMeta[id] = true
	}
	if err := s.replaceDeadMetaVoter(ctx, members, have, voters); err != nil {
		errs = append(errs, err)
	}
	return inMeta, errors.Join(errs...)
}

// metaCaughtUp reports whether a node's copy of the catalogue is within a
// few entries of the meta leader's commit index.
func (s *Server) metaCaughtUp(ctx context.Context, m gossipMeta) bool {
	cc, err := s.peers.get(m.GRPC)
	if err != nil {
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	resp, err := pb.NewInternalClient(cc).NodeStatus(cctx, &pb.NodeStatusRequest{})
	if err != nil {
		return false
	}
	return resp.Status.GetMetaAppliedIndex()+caughtUpEntries >= s.meta.raft.CommitIndex()
}

// replaceDeadMetaVoter removes one meta voter that gossip has not seen for
// longer than DeadNodeGrace, when another member can take its vote and the
// remaining voters keep a quorum of live ones; the next pass promotes the
// replacement.
func (s *Server) replaceDeadMetaVoter(ctx context.Context, members map[string]gossipMeta, have map[string]raft.Server, voters int) error {
	now := time.Now()
	if s.metaDown == nil {
		s.metaDown = map[string]time.Time{}
	}
	liveVoters, spare := 0, false
	var dead []string
	for id, srv := range have {
		_, alive := members[id]
		if alive {
			delete(s.metaDown, id)
		} else if _, ok := s.metaDown[id]; !ok {
			s.metaDown[id] = now
		}
		switch {
		case srv.Suffrage == raft.Voter && alive:
			liveVoters++
		case srv.Suffrage == raft.Voter && now.Sub(s.metaDown[id]) > s.cfg.DeadNodeGrace:
			dead = append(dead, id)
		case srv.Suffrage != raft.Voter && alive:
			spare = true
		}
	}
	for id := range members {
		if _, in := have[id]; !in {
			spare = true
		}
	}
	if len(dead) == 0 || !spare || liveVoters < (voters-1)/2+1 {
		return nil
	}
	sort.Strings(dead)
	if err := waitFuture(ctx, s.meta.raft.RemoveServer(raft.ServerID(dead[0]), 0, 10*time.Second)); err != nil {
		return fmt.Errorf("remove dead meta voter %s: %w", dead[0], err)
	}
	s.logger.Info("meta: dead voter removed; another member takes its vote", "member", dead[0])
	return nil
}

func (s *Server) addMetaMember(ctx context.Context, m gossipMeta, voter bool) error {
	id, addr := raft.ServerID(m.ID), raft.ServerAddress(m.Raft)
	var fut raft.IndexFuture
	if voter {
		fut = s.meta.raft.AddVoter(id, addr, 0, 10*time.Second)
	} else {
		fut = s.meta.raft.AddNonvoter(id, addr, 0, 10*time.Second)
	}
	if err := waitFuture(ctx, fut); err != nil {
		return fmt.Errorf("add %s to meta group (voter=%v): %w", m.ID, voter, err)
	}
	s.logger.Info("meta: member added", "member", m.ID, "voter", voter)
	return nil
}

// metaPropose replicates a catalogue change through the meta group. It must be
// called on the meta leader.
func (s *Server) metaPropose(ctx context.Context, cmd raftfsm.Command) (raftfsm.Result, error) {
	res, err := s.meta.prop.propose(ctx, cmd)
	if err != nil {
		return res, err
	}
	// The proposer returns once the entry is applied on this node, so the
	// catalogue already reflects it.
	return res, nil
}

// metaLeaderAddr returns the gRPC address of the meta-group leader.
func (s *Server) metaLeaderAddr() (string, error) {
	_, id := s.meta.raft.LeaderWithID()
	if id == "" {
		return "", fmt.Errorf("the meta group has no leader: %w", notLeaderError(metaShardID, ""))
	}
	addr := s.grpcAddrOf(string(id))
	if addr == "" {
		return "", fmt.Errorf("meta leader %q has no recorded address yet: %w", id, notLeaderError(metaShardID, ""))
	}
	return addr, nil
}
