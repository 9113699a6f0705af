package server

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/audit"
	"github.com/clover-kv/clover/raftfsm"
)

// auditService serves the auditor's API. A call about one stream is
// answered from this node's replica of the group when it is asked to
// (local) or leads the group, and forwarded to the leader otherwise. A
// keyspace's streams are served only by nodes its residency permits, as
// its data is: the access log of a keyspace is data of its jurisdiction.
type auditService struct {
	pb.UnimplementedAuditServer
	s *Server
}

const (
	adminStream          = "admin"
	defaultAuditPage     = 1000
	maxAuditPage         = 10000
	maxIncidentRecords   = 1 << 20
	defaultIncidentLimit = 1000
)

func streamName(shard uint64) string {
	if shard == metaShardID {
		return adminStream
	}
	return fmt.Sprintf("shard/%d", shard)
}

// clusterName is the origin's cluster in checkpoints: the trust domain
// ("insecure" for an insecure cluster, which has none).
func (s *Server) clusterName() string {
	if s.cfg.TrustDomain != "" {
		return s.cfg.TrustDomain
	}
	return "insecure"
}

// streamKeyspace returns the keyspace of shard's stream ("" for the admin
// stream), refusing it when this node is outside the keyspace's residency.
func (s *Server) streamKeyspace(shard uint64) (string, error) {
	if shard == metaShardID {
		return "", nil
	}
	c := s.catalog()
	ref, ok := c.shards[shard]
	if !ok {
		return "", invalidf("no audit stream for shard %d: it is in no keyspace", shard)
	}
	if !ref.ks.permits(s.cfg.Locality) {
		return "", residencyError(ref.ks.Name, c.permittedEndpoints(ref.ks))
	}
	return ref.ks.Name, nil
}

// streamReplica returns the replica to answer about shard's stream from,
// or nil and the address of the node to forward to.
func (s *Server) streamReplica(shard uint64, local bool) (*replica, string, error) {
	if _, err := s.streamKeyspace(shard); err != nil {
		return nil, "", err
	}
	r := s.replicaOrMeta(shard)
	if r != nil && (local || r.isLeader()) {
		if err := r.fsm.Err(); err != nil {
			return nil, "", unavailablef("shard %d: %v", shard, err)
		}
		return r, "", nil
	}
	if local {
		// Asked for this node's own copy, which it does not hold (yet: a
		// replica being added, or a node restarting).
		return nil, "", unavailablef("audit: shard %d: this node holds no replica of its stream", shard)
	}
	hint := ""
	if r != nil {
		hint = r.leaderHintAddr()
	}
	if hint == "" {
		hint = s.streamHint(shard)
	}
	return nil, hint, nil
}

// signCheckpoint signs the tree head of view, shard's stream on this node.
func (s *Server) signCheckpoint(shard uint64, keyspace string, v *raftfsm.AuditView) (*pb.SignedCheckpoint, error) {
	root, err := v.Root()
	if err != nil {
		return nil, unavailablef("audit: shard %d: tree head: %v", shard, err)
	}
	cp := audit.Checkpoint{Origin: audit.Origin(s.clusterName(), streamName(shard)), Size: v.Size(), Root: root, Time: time.Now().UTC()}
	note, err := audit.SignCheckpoint(cp, s.cfg.NodeID, s.audit.signer)
	if err != nil {
		return nil, unavailablef("audit: shard %d: sign checkpoint: %v", shard, err)
	}
	return &pb.SignedCheckpoint{
		Stream: streamName(shard), Keyspace: keyspace, ShardId: shard, Note: note,
		Signer: s.cfg.NodeID, SignerCert: s.audit.certDER, SignerKey: s.audit.pubDER,
		Size: cp.Size, Root: root[:], TimeUnixNano: cp.Time.UnixNano(),
	}, nil
}

func (a *auditService) Streams(ctx context.Context, req *pb.AuditStreamsRequest) (*pb.AuditStreamsResponse, error) {
	s := a.s
	c := s.catalog()
	out := &pb.AuditStreamsResponse{}
	if req.Admin || req.Keyspace == "" {
		st := &pb.AuditStream{Name: adminStream}
		if f := s.meta.raft.GetConfiguration(); f.Error() == nil {
			for _, m := range f.Configuration().Servers {
				st.Replicas = append(st.Replicas, string(m.ID))
			}
		}
		sort.Strings(st.Replicas)
		for _, id := range st.Replicas {
			st.ReplicaAddrs = append(st.ReplicaAddrs, s.grpcAddrOf(id))
		}
		_, id := s.meta.raft.LeaderWithID()
		st.Leader = string(id)
		out.Streams = append(out.Streams, st)
	}
	if req.Keyspace != "" {
		ks, ok := c.keyspaces[req.Keyspace]
		if !ok {
			return nil, toStatus(fmt.Errorf("%w %q", ErrUnknownKeyspace, req.Keyspace))
		}
		leaders := s.shardLeaders(ctx)
		for _, sh := range ks.Shards {
			st := &pb.AuditStream{Name: streamName(sh.ID), Keyspace: ks.Name, ShardId: sh.ID,
				Replicas: slices.Clone(sh.Replicas), Leader: leaders[sh.ID]}
			for _, id := range st.Replicas {
				st.ReplicaAddrs = append(st.ReplicaAddrs, s.grpcAddrOf(id))
			}
			out.Streams = append(out.Streams, st)
		}
	}
	return out, nil
}

func (a *auditService) Checkpoint(ctx context.Context, req *pb.AuditCheckpointRequest) (*pb.AuditCheckpointResponse, error) {
	s := a.s
	var shards []uint64
	switch {
	case req.ShardId != 0 || (req.Admin && req.Keyspace == "" && req.ShardId == 0 && req.Local):
		shards = []uint64{req.ShardId}
	default:
		if req.Admin || req.Keyspace == "" {
			shards = append(shards, metaShardID)
		}
		if req.Keyspace != "" {
			ks, err := s.keyspaceHere(req.Keyspace)
			if err != nil {
				return nil, toStatus(err)
			}
			for _, sh := range ks.Shards {
				shards = append(shards, sh.ID)
			}
		}
	}
	out := &pb.AuditCheckpointResponse{}
	for _, shard := range shards {
		sc, err := s.checkpointOf(ctx, shard, req.Local)
		if err != nil {
			return nil, toStatus(err)
		}
		out.Checkpoints = append(out.Checkpoints, sc)
	}
	return out, nil
}

// checkpointOf signs shard's tree head here, or has its leader sign it.
func (s *Server) checkpointOf(ctx context.Context, shard uint64, local bool) (*pb.SignedCheckpoint, error) {
	r, hint, err := s.streamReplica(shard, local)
	if err != nil {
		return nil, err
	}
	if r == nil {
		var out *pb.SignedCheckpoint
		err := s.forward(ctx, shard, hint, func(ctx context.Context, cc *grpc.ClientConn) error {
			resp, err := pb.NewAuditClient(cc).Checkpoint(ctx, &pb.AuditCheckpointRequest{ShardId: shard, Admin: shard == metaShardID, Local: true})
			if err == nil && len(resp.Checkpoints) == 1 {
				out = resp.Checkpoints[0]
			} else if err == nil {
				err = unavailablef("audit: shard %d: %d checkpoints in the leader's answer", shard, len(resp.Checkpoints))
			}
			return err
		})
		return out, err
	}
	ksName, _ := s.streamKeyspace(shard)
	v, err := r.fsm.AuditView()
	if err != nil {
		return nil, unavailablef("audit: shard %d: %v", shard, err)
	}
	defer v.Close()
	return s.signCheckpoint(shard, ksName, v)
}

func (a *auditService) Prove(ctx context.Context, req *pb.AuditProveRequest) (*pb.AuditProveResponse, error) {
	s := a.s
	r, hint, err := s.streamReplica(req.ShardId, req.Local)
	if err != nil {
		return nil, toStatus(err)
	}
	if r == nil {
		var out *pb.AuditProveResponse
		err := s.forward(ctx, req.ShardId, hint, func(ctx context.Context, cc *grpc.ClientConn) error {
			fwd := proto.Clone(req).(*pb.AuditProveRequest)
			fwd.Local = true
			var err error
			out, err = pb.NewAuditClient(cc).Prove(ctx, fwd)
			return err
		})
		if err != nil {
			return nil, toStatus(err)
		}
		return out, nil
	}
	ksName, _ := s.streamKeyspace(req.ShardId)
	v, err := r.fsm.AuditView()
	if err != nil {
		return nil, toStatus(unavailablef("audit: shard %d: %v", req.ShardId, err))
	}
	defer v.Close()
	sc, err := s.signCheckpoint(req.ShardId, ksName, v)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.AuditProveResponse{Checkpoint: sc}
	if req.OldSize > 0 && req.OldSize < v.Size() {
		// A tree now shorter than the kept one gets no proof: the
		// auditor's check reports the truncation.
		if out.Consistency, err = audit.ProveConsistency(req.OldSize, v.Size(), v.HashReader()); err != nil {
			return nil, toStatus(unavailablef("audit: shard %d: consistency proof: %v", req.ShardId, err))
		}
	}
	return out, nil
}

func (a *auditService) Entries(ctx context.Context, req *pb.AuditEntriesRequest) (*pb.AuditEntriesResponse, error) {
	s := a.s
	limit := int(req.Limit)
	if limit == 0 {
		limit = defaultAuditPage
	}
	if limit > maxAuditPage {
		return nil, toStatus(invalidf("audit entries: limit %d is over the maximum of %d", limit, maxAuditPage))
	}
	r, hint, err := s.streamReplica(req.ShardId, req.Local)
	if err != nil {
		return nil, toStatus(err)
	}
	if r == nil {
		var out *pb.AuditEntriesResponse
		err := s.forward(ctx, req.ShardId, hint, func(ctx context.Context, cc *grpc.ClientConn) error {
			fwd := proto.Clone(req).(*pb.AuditEntriesRequest)
			fwd.Local = true
			var err error
			out, err = pb.NewAuditClient(cc).Entries(ctx, fwd)
			return err
		})
		if err != nil {
			return nil, toStatus(err)
		}
		return out, nil
	}
	recs, size, err := s.localRecords(r, req.ShardId, req.From, limit, req.ProofSize)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.AuditEntriesResponse{Records: recs, TreeSize: size, Node: s.cfg.NodeID}, nil
}

// localRecords reads records [from, from+limit) of shard's stream from
// replica r, with inclusion proofs against proofSize when it is not 0.
func (s *Server) localRecords(r *replica, shard, from uint64, limit int, proofSize uint64) ([]*pb.AuditRecord, uint64, error) {
	v, err := r.fsm.AuditView()
	if err != nil {
		return nil, 0, unavailablef("audit: shard %d: %v", shard, err)
	}
	defer v.Close()
	if proofSize > v.Size() {
		return nil, 0, invalidf("audit entries: proof size %d is beyond the tree size %d on node %s", proofSize, v.Size(), s.cfg.NodeID)
	}
	leaves, err := v.Leaves(from, limit)
	if err != nil {
		return nil, 0, unavailablef("audit: shard %d: read entries: %v", shard, err)
	}
	out := make([]*pb.AuditRecord, len(leaves))
	for i, leaf := range leaves {
		idx := from + uint64(i)
		rec := &pb.AuditRecord{Stream: streamName(shard), ShardId: shard, Index: idx, Leaf: leaf}
		if e, err := audit.DecodeEntry(leaf); err == nil {
			rec.Entry = e
		}
		if proofSize > idx {
			if rec.Inclusion, err = audit.ProveInclusion(proofSize, idx, v.HashReader()); err != nil {
				return nil, 0, unavailablef("audit: shard %d: inclusion proof: %v", shard, err)
			}
		}
		out[i] = rec
	}
	return out, v.Size(), nil
}

// streamRecords reads every record of shard's stream (at most
// maxIncidentRecords, the newest), here or on its leader.
func (s *Server) streamRecords(ctx context.Context, shard uint64) ([]*pb.AuditRecord, error) {
	var all []*pb.AuditRecord
	from := uint64(0)
	for {
		resp, err := (&auditService{s: s}).Entries(ctx, &pb.AuditEntriesRequest{ShardId: shard, From: from, Limit: maxAuditPage})
		if err != nil {
			return nil, err
		}
		if from == 0 && resp.TreeSize > maxIncidentRecords {
			from = resp.TreeSize - maxIncidentRecords
			continue
		}
		all = append(all, resp.Records...)
		from += uint64(len(resp.Records))
		if len(resp.Records) == 0 || from >= resp.TreeSize {
			return all, nil
		}
	}
}

func (a *auditService) Search(ctx context.Context, req *pb.AuditSearchRequest) (*pb.AuditSearchResponse, error) {
	s := a.s
	_, sh, err := s.locate(req.Keyspace, req.Key)
	if err != nil {
		return nil, toStatus(err)
	}
	limit := int(req.Limit)
	if limit == 0 {
		limit = defaultAuditPage
	}
	if limit > maxAuditPage {
		return nil, toStatus(invalidf("audit search: limit %d is over the maximum of %d", limit, maxAuditPage))
	}
	r := s.replica(sh.ID)
	if r == nil || r.fsm.AuditSalt() == nil {
		// The salt lives on the shard's replicas only: ask one.
		var out *pb.AuditSearchResponse
		err := s.forward(ctx, sh.ID, s.leaderHint(sh, r), func(ctx context.Context, cc *grpc.ClientConn) error {
			var err error
			out, err = pb.NewAuditClient(cc).Search(ctx, req)
			return err
		})
		if err != nil {
			return nil, toStatus(err)
		}
		return out, nil
	}
	h, err := audit.KeyHMAC(r.fsm.AuditSalt(), req.Key)
	if err != nil {
		return nil, toStatus(unavailablef("audit search: %v", err))
	}
	v, err := r.fsm.AuditView()
	if err != nil {
		return nil, toStatus(unavailablef("audit: shard %d: %v", sh.ID, err))
	}
	size := v.Size()
	v.Close()
	out := &pb.AuditSearchResponse{TreeSize: size}
	for from := uint64(0); from < size; {
		recs, _, err := s.localRecords(r, sh.ID, from, maxAuditPage, 0)
		if err != nil {
			return nil, toStatus(err)
		}
		if len(recs) == 0 {
			break
		}
		from += uint64(len(recs))
		for _, rec := range recs {
			if e := rec.Entry; e != nil && names(e, h) {
				out.Records = append(out.Records, rec)
			}
		}
	}
	if len(out.Records) > limit {
		out.Records = out.Records[len(out.Records)-limit:]
	}
	return out, nil
}

// names reports whether e records key HMAC h.
func names(e *pb.AuditEntry, h []byte) bool {
	if string(e.KeyHmac) == string(h) {
		return true
	}
	for _, m := range e.MoreKeyHmacs {
		if string(m) == string(h) {
			return true
		}
	}
	return false
}

func (a *auditService) Incidents(ctx context.Context, req *pb.AuditIncidentsRequest) (*pb.AuditIncidentsResponse, error) {
	s := a.s
	c := s.catalog()
	var shards []uint64
	if req.Keyspace != "" {
		ks, err := s.keyspaceHere(req.Keyspace)
		if err != nil {
			return nil, toStatus(err)
		}
		for _, sh := range ks.Shards {
			shards = append(shards, sh.ID)
		}
	} else {
		shards = append(shards, metaShardID)
		names := make([]string, 0, len(c.keyspaces))
		for name, ks := range c.keyspaces {
			if ks.permits(s.cfg.Locality) && ks.auditMode() != auditNone {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		for _, name := range names {
			for _, sh := range c.keyspaces[name].Shards {
				shards = append(shards, sh.ID)
			}
		}
	}
	var recs []*pb.AuditRecord
	for _, shard := range shards {
		rs, err := s.streamRecords(ctx, shard)
		if err != nil {
			return nil, toStatus(fmt.Errorf("audit incidents: %s: %w", streamName(shard), err))
		}
		recs = append(recs, rs...)
	}
	inc := audit.Incidents(recs, audit.IncidentOptions{VolumeWindow: s.cfg.AuditVolumeWindow, VolumeThreshold: s.cfg.AuditVolumeThreshold})
	out := &pb.AuditIncidentsResponse{}
	for _, i := range inc {
		if i.TimeUnixNano >= req.SinceUnixNano {
			out.Incidents = append(out.Incidents, i)
		}
	}
	limit := int(req.Limit)
	if limit == 0 {
		limit = defaultIncidentLimit
	}
	if len(out.Incidents) > limit {
		out.Incidents = out.Incidents[len(out.Incidents)-limit:]
	}
	return out, nil
}
