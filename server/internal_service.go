package server

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/clover-kv/clover/access"
	pb "github.com/clover-kv/clover/api/cloverv1"
)

// internalService is spoken between nodes.
type internalService struct {
	pb.UnimplementedInternalServer
	s *Server
}

func (i *internalService) NodeStatus(ctx context.Context, req *pb.NodeStatusRequest) (*pb.NodeStatusResponse, error) {
	if req.GetIdentify() {
		s := i.s
		self := &nodeRecord{ID: s.cfg.NodeID, Locality: s.cfg.Locality, GRPCAddr: s.selfRec.GRPC, RaftAddr: s.selfRec.Raft, GossipAddr: s.selfRec.Gossip}
		return &pb.NodeStatusResponse{Status: &pb.NodeStatus{Reachable: true, Node: s.nodeToPB(self)}}, nil
	}
	return &pb.NodeStatusResponse{Status: i.s.localStatus()}, nil
}

func (i *internalService) ShardScan(ctx context.Context, req *pb.ShardScanRequest) (*pb.ShardScanResponse, error) {
	ks, err := i.s.keyspaceHere(req.Keyspace)
	if err != nil {
		return nil, toStatus(err)
	}
	var sh *shardRecord
	for j := range ks.Shards {
		if ks.Shards[j].ID == req.ShardId {
			sh = &ks.Shards[j]
		}
	}
	if sh == nil {
		return nil, toStatus(invalidf("shard %d is not part of keyspace %q", req.ShardId, req.Keyspace))
	}
	kvs, more, err := i.s.shardScan(ctx, ks, sh, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.ShardScanResponse{Kvs: kvs, More: more}, nil
}

// localStatus reports this node's replicas.
func (s *Server) localStatus() *pb.NodeStatus {
	c := s.catalog()
	st := &pb.NodeStatus{Reachable: true, MetaAppliedIndex: c.index, Refusals: s.refusalCounts()}
	if s.audit != nil {
		st.AuditFailures, st.AuditDropped = s.audit.failures.Load(), s.audit.dropped.Load()
		st.AuditDiskFull = s.diskRefusal() != nil
	}
	if n, ok := c.nodes[s.cfg.NodeID]; ok {
		st.Node = s.nodeToPB(n)
	} else {
		self := &nodeRecord{ID: s.cfg.NodeID, Locality: s.cfg.Locality, GRPCAddr: s.selfRec.GRPC, RaftAddr: s.selfRec.Raft, GossipAddr: s.selfRec.Gossip}
		st.Node = s.nodeToPB(self)
	}
	s.mu.RLock()
	reps := make([]*replica, 0, len(s.replicas))
	for _, r := range s.replicas {
		reps = append(reps, r)
	}
	s.mu.RUnlock()
	sort.Slice(reps, func(i, j int) bool { return reps[i].id < reps[j].id })
	for _, r := range reps {
		rs := &pb.ShardReplicaStatus{
			ShardId: r.id, Leader: r.isLeader(), AppliedIndex: r.fsm.AppliedIndex(),
			CommitIndex: r.raft.CommitIndex(), LastIndex: r.raft.LastIndex(),
			State: strings.ToLower(r.raft.State().String()),
		}
		if ref, ok := c.shards[r.id]; ok {
			rs.Keyspace = ref.ks.Name
		}
		if rs.CommitIndex > rs.AppliedIndex {
			rs.Lag = rs.CommitIndex - rs.AppliedIndex
		}
		if !rs.Leader {
			rs.LastContactMs = -1
			if lc := r.raft.LastContact(); !lc.IsZero() {
				rs.LastContactMs = time.Since(lc).Milliseconds()
			}
		}
		if err := r.fsm.Err(); err != nil {
			rs.Fault = err.Error()
		}
		if fut := r.raft.GetConfiguration(); fut.Error() == nil {
			for _, srv := range fut.Configuration().Servers {
				rs.Members = append(rs.Members, &pb.RaftMember{NodeId: string(srv.ID), Voter: srv.Suffrage == raft.Voter})
			}
		}
		st.Shards = append(st.Shards, rs)
		st.ShardsHeld++
		if r.raft.State() == raft.Leader {
			st.ShardsLed++
		}
	}
	s.mu.RLock()
	for id, err := range s.damaged {
		rs := &pb.ShardReplicaStatus{ShardId: id, State: "damaged", Damaged: true, Fault: err.Error(), LastContactMs: -1}
		if ref, ok := c.shards[id]; ok {
			rs.Keyspace = ref.ks.Name
		}
		st.Shards = append(st.Shards, rs)
	}
	s.mu.RUnlock()
	sort.Slice(st.Shards, func(i, j int) bool { return st.Shards[i].ShardId < st.Shards[j].ShardId })
	return st
}

func (i *internalService) ChangeReplica(ctx context.Context, req *pb.ChangeReplicaRequest) (*pb.ChangeReplicaResponse, error) {
	// Membership changes are the placement controller's, which runs on the
	// meta leader: in secure mode no other node may ask for one.
	if ci, ok := callerOf(ctx); ok && ci.caller.Kind == access.Node {
		if _, leader := i.s.meta.raft.LeaderWithID(); string(leader) != ci.caller.Name {
			return nil, i.s.gate.refuse(access.Decision{Rule: access.RuleNodeOnly,
				Reason: fmt.Sprintf("node %s asks for a membership change, which only the meta leader makes", ci.caller.Name)})
		}
	}
	if err := i.s.changeReplica(ctx, req); err != nil {
		return nil, toStatus(err)
	}
	return &pb.ChangeReplicaResponse{}, nil
}

func (i *internalService) ReadIndex(ctx context.Context, req *pb.ReadIndexRequest) (*pb.ReadIndexResponse, error) {
	r := i.s.replica(req.ShardId)
	if r == nil || req.ShardId == metaShardID {
		return nil, toStatus(notLeaderError(req.ShardId, ""))
	}
	idx, err := r.leaderReadIndex(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.ReadIndexResponse{Index: r.applied.readIndexFor(idx)}, nil
}

// AuditAppend appends entries to a group's audit stream on its leader.
func (i *internalService) AuditAppend(ctx context.Context, req *pb.AuditAppendRequest) (*pb.AuditAppendResponse, error) {
	size, err := i.s.appendFrom(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.AuditAppendResponse{TreeSize: size}, nil
}
