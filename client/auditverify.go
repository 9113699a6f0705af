package client

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/audit"
)

// Problem kinds of an AuditReport besides those of audit.CheckStream
// (truncated, rewritten, entry, signature, proof).
const (
	// AuditUnreachable: a replica of the stream could not be asked. Its
	// copy of the log was not verified, which is not a pass.
	AuditUnreachable = "unreachable"
	// AuditMissing: the cluster lists no stream of a kept checkpoint (its
	// keyspace or shard is gone; the admin stream records a drop).
	AuditMissing = "missing"
)

// AuditReport is what AuditVerify found, stream by stream, in the order of
// keyspace and shard (the admin stream first).
type AuditReport struct {
	Streams []AuditStreamReport
}

// AuditStreamReport is one stream: its kept checkpoint checked against
// every replica, or a stream the kept checkpoints did not know.
type AuditStreamReport struct {
	Stream   string
	Keyspace string
	ShardID  uint64
	// New: the cluster holds the stream and the kept checkpoints name none
	// of it (a shard created since): information, not a failure. Nothing
	// of it was verified.
	New bool
	// KeptSize is the tree size of the kept checkpoint (0 for a new stream).
	KeptSize uint64
	// Problems of the stream itself: a kept checkpoint whose signature
	// fails (then no replica is checked), a stream gone missing.
	Problems []audit.Problem
	// Nodes: one per replica the cluster lists for the stream.
	Nodes []AuditNodeReport
}

// AuditNodeReport is one replica of a stream.
type AuditNodeReport struct {
	Node string
	Addr string
	// OldSize is the kept checkpoint's tree size, NewSize the size of the
	// checkpoint the replica signed now (0 when it gave none).
	OldSize, NewSize uint64
	// Attested: both checkpoints are signed by node certificates of the
	// cluster CA. In insecure mode nothing attests the signing keys: the
	// proofs are checked, but a node could have signed anything.
	Attested bool
	// Problems: none when the replica's log extends the kept checkpoint.
	Problems []audit.Problem
}

// OK reports whether every replica of every kept stream was reached and
// extends its kept checkpoint. New streams do not count against it.
func (r *AuditReport) OK() bool { return len(r.Problems()) == 0 }

// Problems returns every problem of the report, streams' and replicas'.
func (r *AuditReport) Problems() []audit.Problem {
	var out []audit.Problem
	for _, s := range r.Streams {
		out = append(out, s.Problems...)
		for _, n := range s.Nodes {
			out = append(out, n.Problems...)
		}
	}
	return out
}

// AuditVerify checks, for the stream of every kept checkpoint, that every
// replica the cluster lists for it still extends it: each replica proves,
// from its own copy, a signed checkpoint consistent with the kept one and
// hands over all its records up to that checkpoint, which are checked
// against it (audit.VerifySigned, audit.CheckStream). roots is the cluster
// CA and cluster its name (the CA's trust domain); with nil roots (insecure
// mode) signatures are checked but unattested. The error is for what stops
// the whole check (no kept checkpoints, a refusal of the caller, the
// context); what a replica's log shows is in the report.
func (c *Client) AuditVerify(ctx context.Context, kept []*pb.SignedCheckpoint, roots *x509.CertPool, cluster string) (*AuditReport, error) {
	if len(kept) == 0 {
		return nil, fmt.Errorf("%w: no kept checkpoints to verify", ErrInvalidArgument)
	}
	keptBy := map[string]*pb.SignedCheckpoint{}
	for _, k := range kept {
		if _, dup := keptBy[k.GetStream()]; dup {
			return nil, fmt.Errorf("%w: the kept checkpoints name stream %q twice", ErrInvalidArgument, k.GetStream())
		}
		keptBy[k.GetStream()] = k
	}
	streams, gone, err := c.streamsOf(ctx, kept)
	if err != nil {
		return nil, err
	}
	rep := &AuditReport{}
	for _, k := range kept {
		sr := AuditStreamReport{Stream: k.GetStream(), Keyspace: k.GetKeyspace(), ShardID: k.GetShardId(), KeptSize: k.GetSize()}
		st := streams[k.GetStream()]
		switch {
		case st == nil && gone[k.GetKeyspace()]:
			sr.Problems = []audit.Problem{{Stream: sr.Stream, Kind: AuditMissing, Detail: "keyspace " + k.GetKeyspace() + " no longer exists"}}
		case st == nil:
			sr.Problems = []audit.Problem{{Stream: sr.Stream, Kind: AuditMissing, Detail: "the cluster lists no such stream"}}
		default:
			if err := c.verifyStream(ctx, &sr, k, st, roots, cluster); err != nil {
				return nil, err
			}
		}
		rep.Streams = append(rep.Streams, sr)
	}
	for name, st := range streams {
		if keptBy[name] == nil {
			rep.Streams = append(rep.Streams, AuditStreamReport{Stream: name, Keyspace: st.GetKeyspace(), ShardID: st.GetShardId(), New: true})
		}
	}
	slices.SortFunc(rep.Streams, func(a, b AuditStreamReport) int {
		return cmp.Or(cmp.Compare(a.Keyspace, b.Keyspace), cmp.Compare(a.ShardID, b.ShardID), cmp.Compare(a.Stream, b.Stream))
	})
	return rep, nil
}

// streamsOf lists, by name, the cluster's streams of every keyspace the
// kept checkpoints name (and the admin stream if they name it); gone holds
// the keyspaces that no longer exist.
func (c *Client) streamsOf(ctx context.Context, kept []*pb.SignedCheckpoint) (map[string]*pb.AuditStream, map[string]bool, error) {
	streams, gone, asked := map[string]*pb.AuditStream{}, map[string]bool{}, map[string]bool{}
	for _, k := range kept {
		ks, admin := k.GetKeyspace(), k.GetStream() == "admin"
		if admin {
			ks = ""
		}
		if asked[ks] {
			continue
		}
		asked[ks] = true
		list, err := c.AuditStreams(ctx, ks, admin)
		if errors.Is(err, ErrUnknownKeyspace) {
			gone[ks] = true
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("audit streams of %q: %w", ks, err)
		}
		for _, st := range list {
			streams[st.GetName()] = st
		}
	}
	return streams, gone, nil
}

// verifyStream checks the kept checkpoint k of stream st on every replica.
func (c *Client) verifyStream(ctx context.Context, sr *AuditStreamReport, k *pb.SignedCheckpoint, st *pb.AuditStream, roots *x509.CertPool, cluster string) error {
	old, oldAttested, err := audit.VerifySigned(k, roots, cluster)
	if err != nil {
		sr.Problems = append(sr.Problems, audit.Problem{Stream: sr.Stream, Node: k.GetSigner(), Kind: "signature",
			Detail: fmt.Sprintf("kept checkpoint signed by %s: %v", k.GetSigner(), err)})
		return nil
	}
	addrs := st.GetReplicaAddrs()
	for i, node := range st.GetReplicas() {
		addr := ""
		if i < len(addrs) {
			addr = addrs[i]
		}
		nr, err := c.verifyReplica(ctx, sr.Stream, node, addr, st.GetShardId(), old, roots, cluster)
		if err != nil {
			return err
		}
		nr.Attested = nr.Attested && oldAttested
		sr.Nodes = append(sr.Nodes, nr)
	}
	return nil
}

// How long AuditVerify waits for a replica shorter than the kept
// checkpoint to catch up, and how often it asks again meanwhile.
const (
	auditSettle     = 5 * time.Second
	auditSettlePoll = 200 * time.Millisecond
)

// verifyReplica checks one replica's copy of a stream against old.
func (c *Client) verifyReplica(ctx context.Context, stream, node, addr string, shard uint64, old audit.Checkpoint,
	roots *x509.CertPool, cluster string) (AuditNodeReport, error) {
	nr := AuditNodeReport{Node: node, Addr: addr, OldSize: old.Size}
	problem := func(kind, detail string) (AuditNodeReport, error) {
		nr.Problems = append(nr.Problems, audit.Problem{Stream: stream, Node: node, Kind: kind, Detail: detail})
		return nr, nil
	}
	if addr == "" {
		return problem(AuditUnreachable, "the cluster lists no address for the node")
	}
	resp, err := c.AuditProve(ctx, addr, shard, old.Size)
	// A follower may not have applied the newest entries of a checkpoint
	// its leader signed, and a replica just added (or a node just
	// restarted) may not serve its copy yet: give it auditSettle to catch
	// up before a copy shorter than the kept one counts as truncated, or
	// the node as unreachable.
	settling := func() bool {
		if err != nil {
			return errors.Is(err, ErrUnavailable) && ctx.Err() == nil
		}
		return resp.GetCheckpoint().GetSize() < old.Size
	}
	for deadline := time.Now().Add(auditSettle); settling() && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return AuditNodeReport{}, ctx.Err()
		case <-time.After(auditSettlePoll):
		}
		resp, err = c.AuditProve(ctx, addr, shard, old.Size)
	}
	if err != nil {
		return c.replicaErr(ctx, err, problem, "prove")
	}
	sc := resp.GetCheckpoint()
	if sc.GetStream() != stream || sc.GetSigner() != node {
		return problem("signature", fmt.Sprintf("asked %s for stream %s, got a checkpoint of %s signed by %s", node, stream, sc.GetStream(), sc.GetSigner()))
	}
	now, attested, err := audit.VerifySigned(sc, roots, cluster)
	if err != nil {
		return problem("signature", err.Error())
	}
	nr.NewSize, nr.Attested = now.Size, attested
	records, err := c.replicaRecords(ctx, addr, shard, now.Size)
	if err != nil {
		return c.replicaErr(ctx, err, problem, "entries")
	}
	nr.Problems = append(nr.Problems, audit.CheckStream(stream, node, old, now, resp.GetConsistency(), records)...)
	return nr, nil
}

// replicaErr turns a replica's failed call into a problem of the report,
// or into the error of the whole check when the caller itself is refused
// (residency, permission) or the context ends.
func (c *Client) replicaErr(ctx context.Context, err error, problem func(kind, detail string) (AuditNodeReport, error), call string) (AuditNodeReport, error) {
	switch {
	case ctx.Err() != nil:
		return AuditNodeReport{}, ctx.Err()
	case errors.Is(err, ErrPermissionDenied), errors.Is(err, ErrResidency):
		return AuditNodeReport{}, err
	case errors.Is(err, ErrUnavailable):
		return problem(AuditUnreachable, fmt.Sprintf("%s: %v", call, err))
	}
	// The node answered and would not prove or list its log: nothing
	// shows it still holds what the kept checkpoint committed to.
	return problem("proof", fmt.Sprintf("%s: %v", call, err))
}

// replicaRecords fetches the records [0, size) of the stream of shard from
// the node at addr's own replica, page by page. A node that ends early or
// skips an index returns what it gave up to there, which CheckStream then
// finds short.
func (c *Client) replicaRecords(ctx context.Context, addr string, shard, size uint64) ([]*pb.AuditRecord, error) {
	out := make([]*pb.AuditRecord, 0, min(size, 1<<20))
	for uint64(len(out)) < size {
		resp, err := c.AuditEntries(ctx, addr, &pb.AuditEntriesRequest{ShardId: shard, From: uint64(len(out)), Limit: auditEntriesPage, Local: true})
		if err != nil {
			return nil, err
		}
		recs := resp.GetRecords()
		if len(recs) == 0 {
			return out, nil
		}
		for _, r := range recs {
			if r.GetIndex() != uint64(len(out)) {
				return out, nil
			}
			if uint64(len(out)) == size {
				break
			}
			out = append(out, r)
		}
	}
	return out, nil
}
