package client

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"

	pb "github.com/clover-kv/clover/api/cloverv1"
)

// The auditor's calls (service Audit). A keyspace's streams are held only
// by nodes its policy permits: calls that name no node go to one of them
// (a node outside answers with a residency error, which the client follows
// like a KV call's), calls that name a node (addr) go to that node alone and
// answer from its own replica, which is how each replica is verified.

// auditEntriesPage is the most records one Entries call returns.
const auditEntriesPage = 10000

// AuditStreams lists the audit streams of keyspace (one per shard) with the
// nodes that hold them; with admin also the admin stream (the meta
// group's, "admin", shard 0); keyspace "" with admin: the admin stream only.
func (c *Client) AuditStreams(ctx context.Context, keyspace string, admin bool) ([]*pb.AuditStream, error) {
	var resp *pb.AuditStreamsResponse
	err := c.audit(ctx, keyspace, func(ctx context.Context, a pb.AuditClient) error {
		var err error
		resp, err = a.Streams(ctx, &pb.AuditStreamsRequest{Keyspace: keyspace, Admin: admin})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.GetStreams(), nil
}

// AuditCheckpoint returns a signed checkpoint of every stream of keyspace
// (with admin, also of the admin stream), each read and signed by the
// stream's leader. Keep them: AuditVerify later proves that every replica
// still extends them.
func (c *Client) AuditCheckpoint(ctx context.Context, keyspace string, admin bool) ([]*pb.SignedCheckpoint, error) {
	var resp *pb.AuditCheckpointResponse
	err := c.audit(ctx, keyspace, func(ctx context.Context, a pb.AuditClient) error {
		var err error
		resp, err = a.Checkpoint(ctx, &pb.AuditCheckpointRequest{Keyspace: keyspace, Admin: admin})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.GetCheckpoints(), nil
}

// AuditProve asks the node at addr, from its own replica of the stream of
// shardID (0: the admin stream), for a signed checkpoint and the
// consistency proof from tree size oldSize to it. It is one attempt: a node
// that cannot be reached fails with ErrUnavailable.
func (c *Client) AuditProve(ctx context.Context, addr string, shardID, oldSize uint64) (*pb.AuditProveResponse, error) {
	var resp *pb.AuditProveResponse
	err := c.auditAt(ctx, addr, func(ctx context.Context, a pb.AuditClient) error {
		var err error
		resp, err = a.Prove(ctx, &pb.AuditProveRequest{ShardId: shardID, OldSize: oldSize, Local: true})
		return err
	})
	return resp, err
}

// AuditEntries returns records of one stream from req.From, at most
// req.Limit (0: the node's default, 1000; at most 10000). With addr the
// node at addr answers (req.Local: from its own replica; one attempt);
// with addr "" any node the stream's keyspace permits does, forwarding to
// the stream's leader, with the usual retries.
func (c *Client) AuditEntries(ctx context.Context, addr string, req *pb.AuditEntriesRequest) (*pb.AuditEntriesResponse, error) {
	if req.GetLimit() > auditEntriesPage {
		return nil, fmt.Errorf("%w: entries limit %d: want at most %d", ErrInvalidArgument, req.GetLimit(), auditEntriesPage)
	}
	var resp *pb.AuditEntriesResponse
	call := func(ctx context.Context, a pb.AuditClient) error {
		var err error
		resp, err = a.Entries(ctx, req)
		return err
	}
	var err error
	if addr != "" {
		err = c.auditAt(ctx, addr, call)
	} else {
		err = c.audit(ctx, c.keyspaceOfShard(req.GetShardId()), call)
	}
	return resp, err
}

// AuditSearch returns the records of keyspace that name key, at most limit
// (0: the node's default). The key goes to a node holding its shard, which
// hashes it with the shard's salt; it is never logged.
func (c *Client) AuditSearch(ctx context.Context, keyspace string, key []byte, limit int) ([]*pb.AuditRecord, error) {
	if limit < 0 {
		return nil, fmt.Errorf("%w: search limit %d: want 0 (default) or more", ErrInvalidArgument, limit)
	}
	var resp *pb.AuditSearchResponse
	err := c.do(ctx, request{keyspace: keyspace, key: key, idempotent: true, call: func(ctx context.Context, cc *grpc.ClientConn) error {
		var err error
		resp, err = pb.NewAuditClient(cc).Search(ctx, &pb.AuditSearchRequest{Keyspace: keyspace, Key: key, Limit: uint32(limit)})
		return err
	}})
	if err != nil {
		return nil, err
	}
	return resp.GetRecords(), nil
}

// AuditIncidents returns what the log shows an auditor must look at since
// since (the zero time: all): refused requests, a caller jurisdiction new to
// a keyspace, unusual volume per identity; of keyspace, or with "" of every
// keyspace the answering node may serve and the admin stream. At most limit
// (0: the node's default).
func (c *Client) AuditIncidents(ctx context.Context, keyspace string, since time.Time, limit int) ([]*pb.AuditIncident, error) {
	if limit < 0 {
		return nil, fmt.Errorf("%w: incidents limit %d: want 0 (default) or more", ErrInvalidArgument, limit)
	}
	req := &pb.AuditIncidentsRequest{Keyspace: keyspace, Limit: uint32(limit)}
	if !since.IsZero() {
		req.SinceUnixNano = since.UnixNano()
	}
	var resp *pb.AuditIncidentsResponse
	err := c.audit(ctx, keyspace, func(ctx context.Context, a pb.AuditClient) error {
		var err error
		resp, err = a.Incidents(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.GetIncidents(), nil
}

// audit runs an Audit call about keyspace ("" for the admin stream) on any
// node permitted to serve it, with routing and retries.
func (c *Client) audit(ctx context.Context, keyspace string, f func(ctx context.Context, a pb.AuditClient) error) error {
	return c.do(ctx, request{keyspace: keyspace, idempotent: true, call: func(ctx context.Context, cc *grpc.ClientConn) error {
		return f(ctx, pb.NewAuditClient(cc))
	}})
}

// auditAt runs an Audit call once on the node at addr.
func (c *Client) auditAt(ctx context.Context, addr string, f func(ctx context.Context, a pb.AuditClient) error) error {
	if addr == "" {
		return fmt.Errorf("%w: no node address", ErrInvalidArgument)
	}
	cc, err := c.conn(addr)
	if err != nil {
		return err
	}
	cause, _ := splitSent(f(ctx, pb.NewAuditClient(cc)))
	return fromStatus(cause)
}
