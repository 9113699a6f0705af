package client

import (
	"context"
	"fmt"
	"iter"
	"time"

	"google.golang.org/grpc"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/internal/keys"
)

// KV is a key, its value and its version (the Raft index of its last write).
type KV struct {
	Key     []byte
	Value   []byte
	Version uint64
}

// ReadOption changes how a read is served.
type ReadOption func(*pb.ReadOptions)

// Follower lets any permitted replica serve the read, provided its data is no
// older than maxStale. Reads are linearizable without it.
func Follower(maxStale time.Duration) ReadOption {
	return func(o *pb.ReadOptions) {
		o.Consistency = pb.Consistency_CONSISTENCY_FOLLOWER
		o.MaxStalenessMs = uint32(max(maxStale.Milliseconds(), 1))
	}
}

// Linearizable asks for a linearizable read (the default).
func Linearizable() ReadOption {
	return func(o *pb.ReadOptions) { o.Consistency = pb.Consistency_CONSISTENCY_LINEARIZABLE }
}

func readOptions(opts []ReadOption) *pb.ReadOptions {
	ro := &pb.ReadOptions{}
	for _, o := range opts {
		o(ro)
	}
	return ro
}

func checkKey(key []byte) error {
	if err := keys.ValidateKey(key); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	return nil
}

func checkValue(v []byte) error {
	if err := keys.ValidateValue(v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	return nil
}

// Put writes value under key and returns the key's new version.
func (c *Client) Put(ctx context.Context, keyspace string, key, value []byte) (uint64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	if err := checkValue(value); err != nil {
		return 0, err
	}
	var v uint64
	req := &pb.PutRequest{Keyspace: keyspace, Key: key, Value: value}
	err := c.do(ctx, request{keyspace: keyspace, key: key, call: func(ctx context.Context, cc *grpc.ClientConn) error {
		resp, err := pb.NewKVClient(cc).Put(ctx, req)
		v = resp.GetVersion()
		return err
	},
		streamOp: func() *pb.StreamOp { return &pb.StreamOp{Op: &pb.StreamOp_Put{Put: req}} },
		onResult: func(r *pb.StreamResult) { v = r.GetPut().GetVersion() },
	})
	return v, err
}

// Get reads key. A missing key returns ErrNotFound.
func (c *Client) Get(ctx context.Context, keyspace string, key []byte, opts ...ReadOption) (KV, error) {
	if err := checkKey(key); err != nil {
		return KV{}, err
	}
	ro := readOptions(opts)
	var resp *pb.GetResponse
	req := &pb.GetRequest{Keyspace: keyspace, Key: key, Read: ro}
	err := c.do(ctx, request{keyspace: keyspace, key: key, idempotent: true,
		anyReplica: ro.Consistency == pb.Consistency_CONSISTENCY_FOLLOWER,
		call: func(ctx context.Context, cc *grpc.ClientConn) error {
			var err error
			resp, err = pb.NewKVClient(cc).Get(ctx, req)
			return err
		},
		streamOp: func() *pb.StreamOp { return &pb.StreamOp{Op: &pb.StreamOp_Get{Get: req}} },
		onResult: func(r *pb.StreamResult) { resp = r.GetGet() },
	})
	if err != nil {
		return KV{}, err
	}
	if !resp.GetFound() {
		return KV{}, ErrNotFound
	}
	return KV{Key: key, Value: resp.GetValue(), Version: resp.GetVersion()}, nil
}

// Delete removes key (a no-op for a missing key) and returns the Raft index
// of the delete.
func (c *Client) Delete(ctx context.Context, keyspace string, key []byte) (uint64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	var v uint64
	req := &pb.DeleteRequest{Keyspace: keyspace, Key: key}
	err := c.do(ctx, request{keyspace: keyspace, key: key, call: func(ctx context.Context, cc *grpc.ClientConn) error {
		resp, err := pb.NewKVClient(cc).Delete(ctx, req)
		v = resp.GetVersion()
		return err
	},
		streamOp: func() *pb.StreamOp { return &pb.StreamOp{Op: &pb.StreamOp_Delete{Delete: req}} },
		onResult: func(r *pb.StreamResult) { v = r.GetDelete().GetVersion() },
	})
	return v, err
}

// CompareAndSwap writes value only if the key's version is expected (0: the
// key must not exist). On a mismatch it returns an error matching
// ErrVersionMismatch whose *Error carries the current version.
func (c *Client) CompareAndSwap(ctx context.Context, keyspace string, key []byte, expected uint64, value []byte) (uint64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	if err := checkValue(value); err != nil {
		return 0, err
	}
	return c.cas(ctx, &pb.CompareAndSwapRequest{Keyspace: keyspace, Key: key, ExpectedVersion: expected, Value: value})
}

// CompareAndDelete deletes key only if its version is expected.
func (c *Client) CompareAndDelete(ctx context.Context, keyspace string, key []byte, expected uint64) (uint64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	return c.cas(ctx, &pb.CompareAndSwapRequest{Keyspace: keyspace, Key: key, ExpectedVersion: expected, Delete: true})
}

func (c *Client) cas(ctx context.Context, req *pb.CompareAndSwapRequest) (uint64, error) {
	var v uint64
	err := c.do(ctx, request{keyspace: req.Keyspace, key: req.Key, call: func(ctx context.Context, cc *grpc.ClientConn) error {
		resp, err := pb.NewKVClient(cc).CompareAndSwap(ctx, req)
		v = resp.GetVersion()
		return err
	},
		streamOp: func() *pb.StreamOp { return &pb.StreamOp{Op: &pb.StreamOp_CompareAndSwap{CompareAndSwap: req}} },
		onResult: func(r *pb.StreamResult) { v = r.GetCompareAndSwap().GetVersion() },
	})
	return v, err
}

// Op is one operation of an atomic batch.
type Op struct {
	key, value []byte
	del        bool
	hasVersion bool
	version    uint64
}

// PutOp writes value under key.
func PutOp(key, value []byte) Op { return Op{key: key, value: value} }

// DeleteOp deletes key.
func DeleteOp(key []byte) Op { return Op{key: key, del: true} }

// IfVersion makes the op (and so the whole batch) conditional on the key's
// version being v (0: the key must not exist).
func (o Op) IfVersion(v uint64) Op { o.hasVersion, o.version = true, v; return o }

// Batch applies ops atomically: all or none. Every key must map to the same
// shard (use keys sharing a shard, e.g. from one entity); the batch is
// refused with ErrInvalidArgument otherwise. Limits: 1,000 ops, 4 MiB.
func (c *Client) Batch(ctx context.Context, keyspace string, ops ...Op) (uint64, error) {
	if len(ops) == 0 {
		return 0, fmt.Errorf("%w: empty batch", ErrInvalidArgument)
	}
	req := &pb.BatchRequest{Keyspace: keyspace}
	size := 0
	for _, o := range ops {
		if err := checkKey(o.key); err != nil {
			return 0, err
		}
		if err := checkValue(o.value); err != nil {
			return 0, err
		}
		size += len(o.key) + len(o.value)
		bo := &pb.BatchOp{Key: o.key, Value: o.value, HasExpectedVersion: o.hasVersion, ExpectedVersion: o.version}
		if o.del {
			bo.Kind = pb.BatchOp_KIND_DELETE
		}
		req.Ops = append(req.Ops, bo)
	}
	if err := keys.ValidateBatchSize(len(ops), size); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	var v uint64
	err := c.do(ctx, request{keyspace: keyspace, key: ops[0].key, call: func(ctx context.Context, cc *grpc.ClientConn) error {
		resp, err := pb.NewKVClient(cc).Batch(ctx, req)
		v = resp.GetVersion()
		return err
	},
		streamOp: func() *pb.StreamOp { return &pb.StreamOp{Op: &pb.StreamOp_Batch{Batch: req}} },
		onResult: func(r *pb.StreamResult) { v = r.GetBatch().GetVersion() },
	})
	return v, err
}

// ScanOption shapes a scan.
type ScanOption func(*pb.ScanRequest)

// WithPrefix scans keys starting with p.
func WithPrefix(p []byte) ScanOption { return func(r *pb.ScanRequest) { r.Prefix = p } }

// WithRange scans keys in [start, end); a nil end is unbounded.
func WithRange(start, end []byte) ScanOption {
	return func(r *pb.ScanRequest) { r.Start, r.End = start, end }
}

// WithLimit caps a page (default 1000, max 10000).
func WithLimit(n int) ScanOption { return func(r *pb.ScanRequest) { r.Limit = uint32(n) } }

// WithPageToken resumes a scan where a previous page ended.
func WithPageToken(t []byte) ScanOption { return func(r *pb.ScanRequest) { r.PageToken = t } }

// KeysOnly leaves values out.
func KeysOnly() ScanOption { return func(r *pb.ScanRequest) { r.KeysOnly = true } }

// WithRead sets the read consistency of a scan.
func WithRead(opts ...ReadOption) ScanOption {
	return func(r *pb.ScanRequest) { r.Read = readOptions(opts) }
}

// Scan returns one page of keys in order across all shards, and the token of
// the next page (nil at the end).
func (c *Client) Scan(ctx context.Context, keyspace string, opts ...ScanOption) ([]KV, []byte, error) {
	req := &pb.ScanRequest{Keyspace: keyspace}
	for _, o := range opts {
		o(req)
	}
	var resp *pb.ScanResponse
	err := c.do(ctx, request{keyspace: keyspace, idempotent: true, call: func(ctx context.Context, cc *grpc.ClientConn) error {
		var err error
		resp, err = pb.NewKVClient(cc).Scan(ctx, req)
		return err
	}})
	if err != nil {
		return nil, nil, err
	}
	out := make([]KV, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		out[i] = KV{Key: kv.Key, Value: kv.Value, Version: kv.Version}
	}
	return out, resp.NextPageToken, nil
}

// ScanAll iterates over every key the scan selects, page by page.
func (c *Client) ScanAll(ctx context.Context, keyspace string, opts ...ScanOption) iter.Seq2[KV, error] {
	return func(yield func(KV, error) bool) {
		var token []byte
		for {
			page, next, err := c.Scan(ctx, keyspace, append(opts, WithPageToken(token))...)
			if err != nil {
				yield(KV{}, err)
				return
			}
			for _, kv := range page {
				if !yield(kv, nil) {
					return
				}
			}
			if next == nil {
				return
			}
			token = next
		}
	}
}
