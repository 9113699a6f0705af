package server

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/raft"

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
		if err := s.reconcileNodes(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("meta: reconcile nodes", "err", err)
		}
		if err := s.reconcileMetaMembers(); err != nil && ctx.Err() == nil {
			s.logger.Warn("meta: reconcile meta group members", "err", err)
		}
	}
}

// reconcileNodes records every gossip member with its addresses and marks
// recorded nodes that gossip no longer sees as not live.
func (s *Server) reconcileNodes(ctx context.Context) error {
	members := s.gossip.members()
	c := s.catalog()
	var ops []raftfsm.Op
	ids := make([]string, 0, len(members))
	for id := range members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
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
		}
	}
	for _, n := range c.sortedNodes() {
		if _, alive := members[n.ID]; !alive && n.Live {
			down := *n
			down.Live = false
			ops = append(ops, putOp(metaNodeKey(n.ID), mustJSON(down)))
		}
	}
	if len(ops) == 0 {
		return nil
	}
	_, err := s.metaPropose(ctx, raftfsm.Command{Ops: ops})
	return err
}

// reconcileMetaMembers adds recorded live nodes to the meta group: voters
// (spread across regions) up to MetaVoters, non-voters after that, one change
// per pass.
func (s *Server) reconcileMetaMembers() error {
	fut := s.meta.raft.GetConfiguration()
	if err := fut.Error(); err != nil {
		return err
	}
	conf := fut.Configuration()
	have := map[string]raft.Server{}
	voters := 0
	votingRegions := map[string]bool{}
	c := s.catalog()
	for _, srv := range conf.Servers {
		have[string(srv.ID)] = srv
		if srv.Suffrage == raft.Voter {
			voters++
			if n, ok := c.nodes[string(srv.ID)]; ok {
				votingRegions[n.Locality.Region] = true
			}
		}
	}
	// Candidates: live recorded nodes; those in regions without a voter first.
	var cands []*nodeRecord
	for _, n := range c.sortedNodes() {
		if n.Live {
			cands = append(cands, n)
		}
	}
	sort.SliceStable(cands, func(i, j int) bool {
		return !votingRegions[cands[i].Locality.Region] && votingRegions[cands[j].Locality.Region]
	})
	for _, n := range cands {
		srv, in := have[n.ID]
		switch {
		case in && string(srv.Address) != n.RaftAddr:
			// The node moved: re-add it at its new address.
			return s.addMetaMember(n, srv.Suffrage == raft.Voter)
		case !in:
			return s.addMetaMember(n, voters < s.cfg.MetaVoters)
		case srv.Suffrage == raft.Nonvoter && voters < s.cfg.MetaVoters:
			return s.addMetaMember(n, true)
		}
	}
	return nil
}

func (s *Server) addMetaMember(n *nodeRecord, voter bool) error {
	id, addr := raft.ServerID(n.ID), raft.ServerAddress(n.RaftAddr)
	var fut raft.IndexFuture
	if voter {
		fut = s.meta.raft.AddVoter(id, addr, 0, 10*time.Second)
	} else {
		fut = s.meta.raft.AddNonvoter(id, addr, 0, 10*time.Second)
	}
	if err := fut.Error(); err != nil {
		return fmt.Errorf("add %s to meta group (voter=%v): %w", n.ID, voter, err)
	}
	s.logger.Info("meta: member added", "member", n.ID, "voter", voter)
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
		return "", unavailablef("the meta group has no leader")
	}
	addr := s.grpcAddrOf(string(id))
	if addr == "" {
		return "", unavailablef("meta leader %q has no recorded address yet", id)
	}
	return addr, nil
}

var errNotMetaLeader = errors.New("not the meta leader")
