package server

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"

	pb "github.com/clover-kv/clover/api/cloverv1"
)

const (
	defaultSettle     = 10 * time.Second
	maxSettle         = 10 * time.Minute
	settlePoll        = 50 * time.Millisecond
	checkShardsAtOnce = 8
)

// Shard check statuses (pb.ShardCheck.Status).
const (
	checkIdentical   = "identical"
	checkDiverged    = "diverged"
	checkUnsettled   = "unsettled"
	checkUnreachable = "unreachable"
)

// ShardDigest hashes this node's replica of a shard.
func (i *internalService) ShardDigest(ctx context.Context, req *pb.ShardDigestRequest) (*pb.ShardDigestResponse, error) {
	r := i.s.replica(req.ShardId)
	if r == nil {
		if err := i.s.damagedErr(req.ShardId); err != nil {
			return nil, toStatus(err)
		}
		return nil, toStatus(unavailablef("no replica of shard %d on node %s", req.ShardId, i.s.cfg.NodeID))
	}
	d, err := r.fsm.Digest()
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.ShardDigestResponse{AppliedIndex: d.AppliedIndex, Hash: d.Hash, Keys: d.Keys}, nil
}

// CheckReplicas compares the replicas of every shard of one keyspace (or of
// all). Replicas are the nodes that report holding the shard plus those the
// catalogue assigns it to. A shard's replicas are hashed again until they
// hold the same data, or differ at the same applied index (diverged), or
// the settle time runs out (unsettled).
func (a *adminService) CheckReplicas(ctx context.Context, req *pb.CheckReplicasRequest) (*pb.CheckReplicasResponse, error) {
	s := a.s
	c := s.catalog()
	var kss []*keyspaceRecord
	if req.Keyspace == "" {
		kss = c.sortedKeyspaces()
	} else {
		ks, ok := c.keyspaces[req.Keyspace]
		if !ok {
			return nil, toStatus(fmt.Errorf("%w %q", ErrUnknownKeyspace, req.Keyspace))
		}
		kss = []*keyspaceRecord{ks}
	}
	settle := time.Duration(req.SettleMs) * time.Millisecond
	if settle == 0 {
		settle = defaultSettle
	}
	if settle > maxSettle {
		return nil, toStatus(invalidf("settle_ms %d above the maximum %d", req.SettleMs, maxSettle.Milliseconds()))
	}

	holders := map[uint64][]string{}
	for _, st := range s.gatherStatus(ctx) {
		if st.Node == nil {
			continue
		}
		for _, r := range st.Shards {
			holders[r.ShardId] = append(holders[r.ShardId], st.Node.Id)
		}
	}
	out := &pb.CheckReplicasResponse{Ok: true}
	for _, ks := range kss {
		for _, sh := range ks.Shards {
			nodes := slices.Clone(holders[sh.ID])
			for _, n := range sh.Replicas {
				if !slices.Contains(nodes, n) {
					nodes = append(nodes, n)
				}
			}
			slices.Sort(nodes)
			out.Shards = append(out.Shards, &pb.ShardCheck{ShardId: sh.ID, Keyspace: ks.Name, Replicas: digestsFor(nodes)})
		}
	}
	deadline := time.Now().Add(settle)
	sem := make(chan struct{}, checkShardsAtOnce)
	var wg sync.WaitGroup
	for _, sc := range out.Shards {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.checkShard(ctx, sc, deadline)
		}()
	}
	wg.Wait()
	for _, sc := range out.Shards {
		if sc.Status != checkIdentical {
			out.Ok = false
		}
	}
	return out, nil
}

func digestsFor(nodes []string) []*pb.ReplicaDigest {
	out := make([]*pb.ReplicaDigest, len(nodes))
	for i, n := range nodes {
		out[i] = &pb.ReplicaDigest{NodeId: n}
	}
	return out
}

// checkShard hashes every replica of sc until judgeDigests settles on
// identical or diverged, or the deadline passes.
func (s *Server) checkShard(ctx context.Context, sc *pb.ShardCheck, deadline time.Time) {
	for {
		s.digestReplicas(ctx, sc)
		sc.Status = judgeDigests(sc.Replicas)
		if sc.Status == checkIdentical || sc.Status == checkDiverged || ctx.Err() != nil || time.Now().After(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(settlePoll):
		}
	}
}

// judgeDigests compares one round of a shard's digests. Replicas with the
// same hash and key count are identical even at different applied indexes,
// so a check after a burst of writes need not wait for every follower to
// learn that the leader's last, empty entry committed (up to two commit
// timeouts). Different data is divergence only at the same applied index;
// at different indexes the replica behind may still be catching up.
func judgeDigests(ds []*pb.ReplicaDigest) string {
	if len(ds) == 0 {
		return checkUnreachable
	}
	for _, d := range ds {
		if d.Error != "" {
			return checkUnreachable
		}
	}
	same, sameIndex := true, true
	for _, d := range ds[1:] {
		same = same && d.Hash == ds[0].Hash && d.Keys == ds[0].Keys
		sameIndex = sameIndex && d.AppliedIndex == ds[0].AppliedIndex
	}
	switch {
	case same:
		// The replicas hold the same data now, at whatever index each is:
		// entries that change no data (a leader's no-op, the proposer's
		// tail) separate them, or nothing does.
		return checkIdentical
	case sameIndex:
		return checkDiverged
	default:
		// Different data at different indexes: one is behind. Ask again.
		return checkUnsettled
	}
}

func (s *Server) digestReplicas(ctx context.Context, sc *pb.ShardCheck) {
	var wg sync.WaitGroup
	for _, d := range sc.Replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := s.shardDigestOn(ctx, d.NodeId, sc.ShardId)
			*d = pb.ReplicaDigest{NodeId: d.NodeId}
			if err != nil {
				d.Error = err.Error()
				return
			}
			d.AppliedIndex, d.Hash, d.Keys = resp.AppliedIndex, resp.Hash, resp.Keys
		}()
	}
	wg.Wait()
}

func (s *Server) shardDigestOn(ctx context.Context, nodeID string, shard uint64) (*pb.ShardDigestResponse, error) {
	req := &pb.ShardDigestRequest{ShardId: shard}
	if nodeID == s.cfg.NodeID {
		return (&internalService{s: s}).ShardDigest(ctx, req)
	}
	addr := s.grpcAddrOf(nodeID)
	if addr == "" {
		return nil, fmt.Errorf("node %s is not in the catalogue", nodeID)
	}
	cc, err := s.peers.get(addr)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	return pb.NewInternalClient(cc).ShardDigest(cctx, req, grpc.WaitForReady(false))
}
