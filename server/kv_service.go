package server

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/internal/keys"
	"github.com/clover-kv/clover/raftfsm"
)

// kvService serves the KV API. Every call resolves the keyspace, refuses it
// when this node's locality is outside the policy (residency error naming the
// permitted endpoints, never forwarding), then serves it from the local shard
// leader or forwards it to the leader among the shard's permitted replicas.
type kvService struct {
	pb.UnimplementedKVServer
	s *Server
}

const (
	defaultScanLimit   = 1000
	maxScanLimit       = 10000
	maxScanReplyBytes  = 4 << 20
	defaultMaxStale    = 500 * time.Millisecond
	minFollowerStaleMs = 1
)

// keyspaceHere resolves a keyspace and enforces residency for this node.
func (s *Server) keyspaceHere(name string) (*keyspaceRecord, error) {
	c := s.catalog()
	ks, ok := c.keyspaces[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKeyspace, name)
	}
	if !ks.permits(s.cfg.Locality) {
		return nil, residencyError(name, c.permittedEndpoints(ks))
	}
	return ks, nil
}

// locate resolves the keyspace and the shard of key, enforcing residency.
func (s *Server) locate(name string, key []byte) (*keyspaceRecord, *shardRecord, error) {
	ks, err := s.keyspaceHere(name)
	if err != nil {
		return nil, nil, err
	}
	if err := keys.ValidateKey(key); err != nil {
		return nil, nil, invalidf("%v", err)
	}
	return ks, &ks.Shards[keys.ShardIndex(keys.Hash(key), len(ks.Shards))], nil
}

// leaderHint is the best guess of a shard leader's gRPC address.
//
// Only nodes the keyspace's policy permits are hinted (a replica being
// migrated away may still lead for a moment; it would refuse the request).
func (s *Server) leaderHint(sh *shardRecord, r *replica) string {
	c := s.catalog()
	ref, ok := c.shards[sh.ID]
	permitted := func(id string) bool {
		n, known := c.nodes[id]
		return ok && known && ref.ks.permits(n.Locality)
	}
	if r != nil {
		if id := r.leaderID(); id != "" && permitted(id) {
			return s.grpcAddrOf(id)
		}
	}
	for _, id := range sh.Replicas {
		if id != s.cfg.NodeID && permitted(id) {
			return s.grpcAddrOf(id)
		}
	}
	return ""
}

// write replicates cmd, operation op of keyspace ks, through the shard
// leader, with its audit entry in the same command when ks audits writes.
func (s *Server) write(ctx context.Context, ks *keyspaceRecord, sh *shardRecord, op string, cmd raftfsm.Command,
	fwd func(ctx context.Context, c pb.KVClient) (uint64, error)) (uint64, error) {
	r := s.replica(sh.ID)
	if r != nil && r.isLeader() {
		leaf, err := s.audit.writeLeaf(ctx, ks, r, op, opKeys(cmd.Ops))
		if err != nil {
			return 0, err
		}
		cmd.Audit = leaf
		res, err := r.prop.propose(ctx, cmd)
		return res.Version, err
	}
	var version uint64
	err := s.forward(ctx, sh.ID, s.leaderHint(sh, r), func(ctx context.Context, cc *grpc.ClientConn) error {
		v, err := fwd(ctx, pb.NewKVClient(cc))
		version = v
		return err
	})
	return version, err
}

// readable prepares the local replica for a read at the requested
// consistency. It returns nil when the read must be forwarded.
func (s *Server) readable(ctx context.Context, sh *shardRecord, ro *pb.ReadOptions) (*replica, error) {
	r := s.replica(sh.ID)
	if r == nil {
		return nil, nil
	}
	var err error
	if ro.GetConsistency() == pb.Consistency_CONSISTENCY_FOLLOWER {
		stale := defaultMaxStale
		if ms := ro.GetMaxStalenessMs(); ms >= minFollowerStaleMs {
			stale = time.Duration(ms) * time.Millisecond
		}
		err = r.followerRead(ctx, stale)
	} else {
		err = r.readIndex(ctx)
	}
	if err == nil {
		return r, nil
	}
	if isNotLeader(err) {
		return nil, nil
	}
	return nil, err
}

func (k *kvService) Put(ctx context.Context, req *pb.PutRequest) (*pb.PutResponse, error) {
	ks, sh, err := k.s.locate(req.Keyspace, req.Key)
	if err != nil {
		k.s.auditResidency(ctx, "put", req.Keyspace, req.Key, err)
		return nil, toStatus(err)
	}
	if err := keys.ValidateValue(req.Value); err != nil {
		return nil, toStatus(invalidf("%v", err))
	}
	cmd := raftfsm.Command{Ops: []raftfsm.Op{{Kind: raftfsm.OpPut, Key: req.Key, Value: req.Value}}}
	v, err := k.s.write(ctx, ks, sh, "put", cmd, func(ctx context.Context, c pb.KVClient) (uint64, error) {
		resp, err := c.Put(ctx, req)
		return resp.GetVersion(), err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.PutResponse{Version: v}, nil
}

func (k *kvService) Delete(ctx context.Context, req *pb.DeleteRequest) (*pb.DeleteResponse, error) {
	ks, sh, err := k.s.locate(req.Keyspace, req.Key)
	if err != nil {
		k.s.auditResidency(ctx, "delete", req.Keyspace, req.Key, err)
		return nil, toStatus(err)
	}
	cmd := raftfsm.Command{Ops: []raftfsm.Op{{Kind: raftfsm.OpDelete, Key: req.Key}}}
	v, err := k.s.write(ctx, ks, sh, "delete", cmd, func(ctx context.Context, c pb.KVClient) (uint64, error) {
		resp, err := c.Delete(ctx, req)
		return resp.GetVersion(), err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.DeleteResponse{Version: v}, nil
}

func (k *kvService) CompareAndSwap(ctx context.Context, req *pb.CompareAndSwapRequest) (*pb.CompareAndSwapResponse, error) {
	ks, sh, err := k.s.locate(req.Keyspace, req.Key)
	if err != nil {
		k.s.auditResidency(ctx, "cas", req.Keyspace, req.Key, err)
		return nil, toStatus(err)
	}
	op := raftfsm.Op{Kind: raftfsm.OpPut, Key: req.Key, Value: req.Value, HasCond: true, CondVersion: req.ExpectedVersion}
	if req.Delete {
		op.Kind, op.Value = raftfsm.OpDelete, nil
	} else if err := keys.ValidateValue(req.Value); err != nil {
		return nil, toStatus(invalidf("%v", err))
	}
	v, err := k.s.write(ctx, ks, sh, "cas", raftfsm.Command{Ops: []raftfsm.Op{op}}, func(ctx context.Context, c pb.KVClient) (uint64, error) {
		resp, err := c.CompareAndSwap(ctx, req)
		return resp.GetVersion(), err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.CompareAndSwapResponse{Version: v}, nil
}

func (k *kvService) Batch(ctx context.Context, req *pb.BatchRequest) (*pb.BatchResponse, error) {
	if len(req.Ops) == 0 {
		return nil, toStatus(invalidf("batch is empty"))
	}
	var sh *shardRecord
	var ks *keyspaceRecord
	size := 0
	ops := make([]raftfsm.Op, len(req.Ops))
	for i, o := range req.Ops {
		kr, s, err := k.s.locate(req.Keyspace, o.Key)
		if err != nil {
			k.s.auditResidency(ctx, "batch", req.Keyspace, o.Key, err)
			return nil, toStatus(err)
		}
		ks = kr
		if sh != nil && s.ID != sh.ID {
			return nil, toStatus(invalidf("batch spans shards: op %d maps to shard %d, op 0 to shard %d; a batch is atomic within one shard", i, s.ID, sh.ID))
		}
		sh = s
		if err := keys.ValidateValue(o.Value); err != nil {
			return nil, toStatus(invalidf("op %d: %v", i, err))
		}
		size += len(o.Key) + len(o.Value)
		ops[i] = raftfsm.Op{Kind: raftfsm.OpPut, Key: o.Key, Value: o.Value, HasCond: o.HasExpectedVersion, CondVersion: o.ExpectedVersion}
		if o.Kind == pb.BatchOp_KIND_DELETE {
			ops[i].Kind, ops[i].Value = raftfsm.OpDelete, nil
		}
	}
	if err := keys.ValidateBatchSize(len(req.Ops), size); err != nil {
		return nil, toStatus(invalidf("%v", err))
	}
	if err := distinctKeys(req.Ops); err != nil {
		return nil, toStatus(err)
	}
	v, err := k.s.write(ctx, ks, sh, "batch", raftfsm.Command{Ops: ops}, func(ctx context.Context, c pb.KVClient) (uint64, error) {
		resp, err := c.Batch(ctx, req)
		return resp.GetVersion(), err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.BatchResponse{Version: v}, nil
}

// opKeys returns the keys ops write, in order.
func opKeys(ops []raftfsm.Op) [][]byte {
	out := make([][]byte, len(ops))
	for i, o := range ops {
		out[i] = o.Key
	}
	return out
}

// shardOf returns the shard of ks that key maps to.
func shardOf(ks *keyspaceRecord, key []byte) *shardRecord {
	return &ks.Shards[keys.ShardIndex(keys.Hash(key), len(ks.Shards))]
}

func distinctKeys(ops []*pb.BatchOp) error {
	seen := make(map[string]int, len(ops))
	for i, o := range ops {
		if j, dup := seen[string(o.Key)]; dup {
			return invalidf("batch ops %d and %d write the same key (fingerprint %s)", j, i, keys.Fingerprint(o.Key))
		}
		seen[string(o.Key)] = i
	}
	return nil
}

func (k *kvService) Get(ctx context.Context, req *pb.GetRequest) (*pb.GetResponse, error) {
	ks, sh, err := k.s.locate(req.Keyspace, req.Key)
	if err != nil {
		k.s.auditResidency(ctx, "get", req.Keyspace, req.Key, err)
		return nil, toStatus(err)
	}
	r, err := k.s.readyForRead(ctx, ks, sh, req.Read, "get", [][]byte{req.Key})
	if err != nil {
		return nil, toStatus(err)
	}
	if r != nil {
		v, ver, found, err := r.fsm.Get(req.Key)
		if err != nil {
			return nil, toStatus(unavailablef("shard %d: read: %v", sh.ID, err))
		}
		return &pb.GetResponse{Found: found, Value: v, Version: ver}, nil
	}
	var resp *pb.GetResponse
	err = k.s.forward(ctx, sh.ID, k.s.leaderHint(sh, k.s.replica(sh.ID)), func(ctx context.Context, cc *grpc.ClientConn) error {
		var err error
		resp, err = pb.NewKVClient(cc).Get(ctx, req)
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

// Scan merges the shards' ordered results: each shard returns up to limit
// keys at or after the start, the merge keeps the smallest limit keys, and
// the page token resumes after the last key returned.
func (k *kvService) Scan(ctx context.Context, req *pb.ScanRequest) (*pb.ScanResponse, error) {
	ks, err := k.s.keyspaceHere(req.Keyspace)
	if err != nil {
		k.s.auditResidency(ctx, "scan", req.Keyspace, nil, err)
		return nil, toStatus(err)
	}
	start, end, err := scanBounds(req)
	if err != nil {
		return nil, toStatus(err)
	}
	limit := int(req.Limit)
	if limit == 0 {
		limit = defaultScanLimit
	}
	if limit > maxScanLimit {
		return nil, toStatus(invalidf("scan limit %d is over the maximum of %d", limit, maxScanLimit))
	}
	type part struct {
		kvs  []*pb.KeyValue
		more bool
		err  error
	}
	parts := make([]part, len(ks.Shards))
	var wg sync.WaitGroup
	for i := range ks.Shards {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sreq := &pb.ShardScanRequest{ShardId: ks.Shards[i].ID, Keyspace: ks.Name, Start: start, End: end,
				Limit: uint32(limit), Read: req.Read, KeysOnly: req.KeysOnly}
			parts[i].kvs, parts[i].more, parts[i].err = k.s.shardScan(ctx, ks, &ks.Shards[i], sreq)
		}(i)
	}
	wg.Wait()
	var all []*pb.KeyValue
	more := false
	for _, p := range parts {
		if p.err != nil {
			return nil, toStatus(p.err)
		}
		all = append(all, p.kvs...)
		more = more || p.more
	}
	sort.Slice(all, func(i, j int) bool { return bytes.Compare(all[i].Key, all[j].Key) < 0 })
	if len(all) > limit {
		all, more = all[:limit], true
	}
	size := 0
	for i, kv := range all {
		size += len(kv.Key) + len(kv.Value)
		if size > maxScanReplyBytes && i > 0 {
			all, more = all[:i], true
			break
		}
	}
	resp := &pb.ScanResponse{Kvs: all}
	if more && len(all) > 0 {
		last := all[len(all)-1].Key
		resp.NextPageToken = append(append([]byte{}, last...), 0)
	}
	return resp, nil
}

// scanBounds turns a prefix or range and a page token into [start, end).
func scanBounds(req *pb.ScanRequest) (start, end []byte, err error) {
	if len(req.Prefix) > 0 {
		if len(req.Start) > 0 || len(req.End) > 0 {
			return nil, nil, invalidf("scan takes a prefix or a range, not both")
		}
		start, end = req.Prefix, prefixEnd(req.Prefix)
	} else {
		start, end = req.Start, req.End
	}
	if len(req.PageToken) > 0 {
		if bytes.Compare(req.PageToken, start) < 0 || (len(end) > 0 && bytes.Compare(req.PageToken, end) > 0) {
			return nil, nil, invalidf("page token does not belong to this scan")
		}
		start = req.PageToken
	}
	if len(end) > 0 && bytes.Compare(start, end) > 0 {
		return nil, nil, invalidf("scan start is after its end")
	}
	return start, end, nil
}

// prefixEnd is the smallest key greater than every key with the prefix, or
// nil when there is none (a prefix of 0xff bytes).
func prefixEnd(p []byte) []byte {
	end := append([]byte{}, p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// shardScan scans one shard locally when this node may read it at the asked
// consistency, else on the shard leader.
func (s *Server) shardScan(ctx context.Context, ks *keyspaceRecord, sh *shardRecord, req *pb.ShardScanRequest) ([]*pb.KeyValue, bool, error) {
	r, err := s.readyForRead(ctx, ks, sh, req.Read, "scan", nil)
	if err != nil {
		return nil, false, err
	}
	if r != nil {
		return localScan(r, req)
	}
	var resp *pb.ShardScanResponse
	err = s.forward(ctx, sh.ID, s.leaderHint(sh, s.replica(sh.ID)), func(ctx context.Context, cc *grpc.ClientConn) error {
		var err error
		resp, err = pb.NewInternalClient(cc).ShardScan(ctx, req)
		return err
	})
	return resp.GetKvs(), resp.GetMore(), err
}

func localScan(r *replica, req *pb.ShardScanRequest) ([]*pb.KeyValue, bool, error) {
	var end []byte
	if len(req.End) > 0 {
		end = req.End
	}
	kvs, err := r.fsm.Scan(req.Start, end, int(req.Limit)+1)
	if err != nil {
		return nil, false, unavailablef("shard %d: scan: %v", r.id, err)
	}
	more := len(kvs) > int(req.Limit)
	if more {
		kvs = kvs[:req.Limit]
	}
	out := make([]*pb.KeyValue, len(kvs))
	for i, kv := range kvs {
		out[i] = &pb.KeyValue{Key: kv.Key, Version: kv.Version}
		if !req.KeysOnly {
			out[i].Value = kv.Value
		}
	}
	return out, more, nil
}
