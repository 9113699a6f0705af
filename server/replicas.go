package server

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// replicaLoop keeps the node's running replicas in step with the catalogue:
// it opens replicas of shards assigned to this node (only where the
// keyspace's policy permits this node's locality) and destroys replicas of
// shards no longer assigned to it.
func (s *Server) replicaLoop(ctx context.Context) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		s.reconcileReplicas()
		select {
		case <-ctx.Done():
			return
		case <-s.catCh:
		case <-tick.C:
		}
	}
}

func (s *Server) reconcileReplicas() {
	c := s.catalog()
	if c.index == 0 {
		return // the catalogue has not been read from the meta group yet
	}
	want := map[uint64]shardRef{}
	for id, ref := range c.shards {
		if slices.Contains(ref.shard.Replicas, s.cfg.NodeID) {
			want[id] = ref
		}
	}
	s.mu.RLock()
	var stale, faulted []*replica
	for id, r := range s.replicas {
		if _, ok := want[id]; !ok {
			stale = append(stale, r)
		} else if err := r.fsm.Err(); isDamage(err) {
			faulted = append(faulted, r)
		}
	}
	var discard []uint64
	for id := range s.damaged {
		if _, ok := want[id]; !ok {
			discard = append(discard, id)
		}
	}
	s.mu.RUnlock()
	for _, r := range faulted {
		// The state machine halted on damaged bytes: take the replica out
		// of service; the controller replaces it.
		s.mu.Lock()
		delete(s.replicas, r.id)
		s.mu.Unlock()
		r.close()
		s.markDamaged(r.id, r.fsm.Err())
	}
	for _, id := range discard {
		if err := s.discardDamaged(id); err != nil {
			s.logger.Error("discard damaged replica", "shard", id, "err", err)
		}
	}
	for _, r := range stale {
		s.mu.Lock()
		delete(s.replicas, r.id)
		s.mu.Unlock()
		if err := r.destroy(); err != nil {
			s.logger.Error("destroy replica", "shard", r.id, "err", err)
			continue
		}
		s.logger.Info("replica removed and its data deleted", "shard", r.id)
	}
	for id, ref := range want {
		if s.damagedErr(id) != nil {
			continue
		}
		if r := s.replica(id); r != nil {
			if !ref.ks.permits(s.cfg.Locality) && r.isLeader() {
				// The policy no longer permits this node (a migration): it
				// serves nothing and hands leadership to a permitted replica
				// at once; the controller then replaces the replica.
				s.logger.Info("policy no longer permits this node: handing over leadership", "shard", id, "keyspace", ref.ks.Name)
				go func() {
					ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Raft.ApplyTimeout)
					defer cancel()
					if err := r.transferLeadership(ctx, r.raft.LeadershipTransfer); err != nil && !errors.Is(err, raft.ErrNotLeader) {
						s.logger.Warn("leadership hand-over failed", "shard", r.id, "err", err)
					}
				}()
			}
			continue
		}
		if !ref.ks.permits(s.cfg.Locality) {
			// Invariant 1 at the node: never create a replica the policy forbids here.
			s.logger.Error("refusing a replica this node's jurisdiction may not hold",
				"shard", id, "keyspace", ref.ks.Name, "locality", s.cfg.Locality.String())
			continue
		}
		var initial []raft.Server
		if slices.Contains(ref.shard.Initial, s.cfg.NodeID) {
			for _, nid := range ref.shard.Initial {
				n, ok := c.nodes[nid]
				if !ok {
					initial = nil
					break
				}
				initial = append(initial, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(nid), Address: raft.ServerAddress(n.RaftAddr)})
			}
		}
		r, err := s.openReplica(id, initial, nil)
		if isDamage(err) {
			s.markDamaged(id, err)
			continue
		}
		if err != nil {
			s.logger.Error("open replica", "shard", id, "err", err)
			continue
		}
		s.mu.Lock()
		s.replicas[id] = r
		s.mu.Unlock()
		s.logger.Info("replica opened", "shard", id, "keyspace", ref.ks.Name)
	}
}
