package server

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	pb "github.com/clover-kv/clover/api/cloverv1"
)

// changeReplica changes a shard's Raft configuration. It runs on the shard
// leader, which is the last line of defence of invariant 1: it refuses to add,
// promote or hand leadership to a node the keyspace's policy does not permit,
// whatever the caller planned.
func (s *Server) changeReplica(ctx context.Context, req *pb.ChangeReplicaRequest) error {
	r := s.replica(req.ShardId)
	if r == nil || req.ShardId == metaShardID {
		return notLeaderError(req.ShardId, "")
	}
	if !r.isLeader() {
		return notLeaderError(req.ShardId, r.leaderHintAddr())
	}
	c := s.catalog()
	ref, ok := c.shards[req.ShardId]
	if !ok {
		return invalidf("shard %d is not in the catalogue", req.ShardId)
	}
	n, ok := c.nodes[req.NodeId]
	if !ok {
		return invalidf("node %q is not in the catalogue", req.NodeId)
	}
	if req.Kind != pb.ChangeReplicaRequest_KIND_REMOVE && !ref.ks.permits(n.Locality) {
		return fmt.Errorf("%w: shard %d of keyspace %q may not be placed on node %q at %s",
			ErrResidency, req.ShardId, ref.ks.Name, n.ID, n.Locality)
	}
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	id, addr := raft.ServerID(n.ID), raft.ServerAddress(n.RaftAddr)
	var err error
	switch req.Kind {
	case pb.ChangeReplicaRequest_KIND_ADD_NONVOTER:
		err = waitFuture(ctx, r.raft.AddNonvoter(id, addr, 0, timeout))
	case pb.ChangeReplicaRequest_KIND_PROMOTE:
		err = waitFuture(ctx, r.raft.AddVoter(id, addr, 0, timeout))
	case pb.ChangeReplicaRequest_KIND_REMOVE:
		err = waitFuture(ctx, r.raft.RemoveServer(id, 0, timeout))
	case pb.ChangeReplicaRequest_KIND_TRANSFER_LEADER:
		err = r.transferLeadership(ctx, func() raft.Future { return r.raft.LeadershipTransferToServer(id, addr) })
	default:
		return invalidf("unknown change kind %d", req.Kind)
	}
	if err != nil {
		if err == raft.ErrNotLeader || err == raft.ErrLeadershipLost {
			return notLeaderError(req.ShardId, r.leaderHintAddr())
		}
		return unavailablef("shard %d: %s %s: %v", req.ShardId, req.Kind, n.ID, err)
	}
	s.logger.Info("shard membership changed", "shard", req.ShardId, "change", req.Kind.String(), "member", n.ID)
	return nil
}

// waitFuture waits for a raft future or ctx. A raft future's own timeout
// bounds only its enqueueing: without a quorum it would wait for ever.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
