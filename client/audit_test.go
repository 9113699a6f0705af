package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/audit"
	"github.com/clover-kv/clover/internal/errkind"
)

// auditReplica is a fake node holding one replica of one stream, in
// insecure mode (an Ed25519 key of its own signs its checkpoints).
type auditReplica struct {
	pb.UnimplementedAuditServer
	pb.UnimplementedAdminServer
	id, addr string
	key      ed25519.PrivateKey
	streams  func() []*pb.AuditStream
	// refuse, when set, answers every Audit call with it.
	refuse error

	mu      sync.Mutex
	entries []*pb.AuditEntry
	tree    audit.Tree
	calls   int
}

const testCluster = "audit-test"

func startAuditReplica(t *testing.T, id string) *auditReplica {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r := &auditReplica{id: id, addr: ln.Addr().String(), key: key}
	s := grpc.NewServer()
	pb.RegisterAuditServer(s, r)
	pb.RegisterAdminServer(s, r)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return r
}

// append adds entries to the replica's log.
func (r *auditReplica) append(t *testing.T, es ...*pb.AuditEntry) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range es {
		leaf, err := audit.EncodeEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.tree.Append(leaf); err != nil {
			t.Fatal(err)
		}
		r.entries = append(r.entries, e)
	}
}

// rebuild replaces the replica's log by es: a rewritten history.
func (r *auditReplica) rebuild(t *testing.T, es []*pb.AuditEntry) {
	r.mu.Lock()
	r.tree, r.entries = audit.Tree{}, nil
	r.mu.Unlock()
	r.append(t, es...)
}

func (r *auditReplica) signed(t *testing.T) *pb.SignedCheckpoint {
	t.Helper()
	sc, err := r.sign()
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// sign signs a checkpoint of the replica's log as it is.
func (r *auditReplica) sign() (*pb.SignedCheckpoint, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cp := audit.Checkpoint{Origin: audit.Origin(testCluster, "shard/7"), Size: r.tree.Size(), Root: r.tree.Root(), Time: time.Now().UTC()}
	note, err := audit.SignCheckpoint(cp, r.id, r.key)
	if err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(r.key.Public())
	if err != nil {
		return nil, err
	}
	return &pb.SignedCheckpoint{Stream: "shard/7", Keyspace: "users", ShardId: 7, Note: note, Signer: r.id, SignerKey: pub,
		Size: cp.Size, Root: cp.Root[:], TimeUnixNano: cp.Time.UnixNano()}, nil
}

func (r *auditReplica) count() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	return r.refuse
}

func (r *auditReplica) RoutingTable(context.Context, *pb.RoutingTableRequest) (*pb.RoutingTableResponse, error) {
	return &pb.RoutingTableResponse{}, nil
}

func (r *auditReplica) Streams(context.Context, *pb.AuditStreamsRequest) (*pb.AuditStreamsResponse, error) {
	if err := r.count(); err != nil {
		return nil, err
	}
	return &pb.AuditStreamsResponse{Streams: r.streams()}, nil
}

func (r *auditReplica) Prove(_ context.Context, req *pb.AuditProveRequest) (*pb.AuditProveResponse, error) {
	if err := r.count(); err != nil {
		return nil, err
	}
	sc, err := r.sign()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	proof, err := audit.ProveConsistency(min(req.OldSize, r.tree.Size()), r.tree.Size(), r.tree.HashReader())
	if err != nil {
		return nil, err
	}
	return &pb.AuditProveResponse{Checkpoint: sc, Consistency: proof}, nil
}

func (r *auditReplica) Entries(_ context.Context, req *pb.AuditEntriesRequest) (*pb.AuditEntriesResponse, error) {
	if err := r.count(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	resp := &pb.AuditEntriesResponse{TreeSize: r.tree.Size(), Node: r.id}
	for i := req.From; i < uint64(len(r.entries)) && len(resp.Records) < int(req.Limit); i++ {
		leaf, _ := audit.EncodeEntry(r.entries[i])
		resp.Records = append(resp.Records, &pb.AuditRecord{Stream: "shard/7", ShardId: 7, Index: i, Leaf: leaf, Entry: r.entries[i]})
	}
	return resp, nil
}

func entries(n int, op string) []*pb.AuditEntry {
	out := make([]*pb.AuditEntry, n)
	for i := range out {
		out[i] = &pb.AuditEntry{TimeUnixNano: int64(1000 + i), Caller: "user:alice", Node: "ie-1", Operation: op, Keyspace: "users", ShardId: 7, Result: "allowed"}
	}
	return out
}

// AuditVerify checks every replica the cluster lists: one that extends
// the kept checkpoint passes, one whose history was rewritten or cut is
// reported with what it shows, one that cannot be reached is a problem of
// its own (not a pass), and a stream the kept file lacks is new.
func TestAuditVerify(t *testing.T) {
	good, rewritten, cut := startAuditReplica(t, "ie-1"), startAuditReplica(t, "ie-2"), startAuditReplica(t, "ie-3")
	deadLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := deadLn.Addr().String()
	deadLn.Close()
	stream := &pb.AuditStream{Name: "shard/7", Keyspace: "users", ShardId: 7,
		Replicas:     []string{"ie-1", "ie-2", "ie-3", "ie-4"},
		ReplicaAddrs: []string{good.addr, rewritten.addr, cut.addr, dead}}
	fresh := &pb.AuditStream{Name: "shard/8", Keyspace: "users", ShardId: 8, Replicas: []string{"ie-1"}, ReplicaAddrs: []string{good.addr}}
	good.streams = func() []*pb.AuditStream { return []*pb.AuditStream{stream, fresh} }
	for _, r := range []*auditReplica{good, rewritten, cut} {
		r.append(t, entries(5, "get")...)
	}
	kept := good.signed(t)
	good.append(t, entries(3, "put")...)
	rewritten.rebuild(t, append(entries(2, "get"), entries(6, "scan")...))
	cut.rebuild(t, entries(3, "get"))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := New(ctx, Config{Endpoints: []string{good.addr}, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rep, err := c.AuditVerify(ctx, []*pb.SignedCheckpoint{kept}, nil, testCluster)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || len(rep.Streams) != 2 {
		t.Fatalf("report %+v: want not OK, two streams", rep)
	}
	s7, s8 := rep.Streams[0], rep.Streams[1]
	if s7.Stream != "shard/7" || s7.New || s7.KeptSize != 5 || len(s7.Nodes) != 4 {
		t.Fatalf("shard/7: %+v", s7)
	}
	if !s8.New || s8.Stream != "shard/8" || len(s8.Nodes) != 0 || len(s8.Problems) != 0 {
		t.Errorf("shard/8 (not in the kept file): %+v, want new and unchecked", s8)
	}
	want := []struct {
		node     string
		newSize  uint64
		kind     string
		attested bool
	}{{"ie-1", 8, "", false}, {"ie-2", 8, "rewritten", false}, {"ie-3", 3, "truncated", false}, {"ie-4", 0, AuditUnreachable, false}}
	for i, w := range want {
		n := s7.Nodes[i]
		if n.Node != w.node || n.OldSize != 5 || n.NewSize != w.newSize || n.Attested != w.attested {
			t.Errorf("node %d: %+v, want %s at %d from 5", i, n, w.node, w.newSize)
		}
		switch {
		case w.kind == "" && len(n.Problems) > 0:
			t.Errorf("%s extends the kept checkpoint, got %v", n.Node, n.Problems)
		case w.kind != "" && (len(n.Problems) == 0 || n.Problems[0].Kind != w.kind):
			t.Errorf("%s: problems %v, want first %s", n.Node, n.Problems, w.kind)
		}
	}
	if got := len(rep.Problems()); got < 3 {
		t.Errorf("Problems() = %d, want at least 3", got)
	}

	// A kept checkpoint whose note was altered is refused before any
	// replica is asked.
	bad := proto.Clone(kept).(*pb.SignedCheckpoint)
	bad.Size = 4
	rep, err = c.AuditVerify(ctx, []*pb.SignedCheckpoint{bad}, nil, testCluster)
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.Streams[0].Problems; len(p) != 1 || p[0].Kind != "signature" || len(rep.Streams[0].Nodes) != 0 {
		t.Errorf("altered kept checkpoint: %+v", rep.Streams[0])
	}
	if _, err := c.AuditVerify(ctx, nil, nil, testCluster); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("no kept checkpoints: %v, want ErrInvalidArgument", err)
	}
}

// An audit call about a keyspace that a node may not serve follows the
// refusal's permitted endpoints to a node that may.
func TestAuditFollowsResidency(t *testing.T) {
	outside, inside := startAuditReplica(t, "us-1"), startAuditReplica(t, "ie-1")
	outside.refuse = errkind.Status(&pb.ErrorDetail{Kind: pb.ErrorDetail_KIND_RESIDENCY, PermittedEndpoints: []string{inside.addr}},
		"keyspace users may not be served here").Err()
	inside.streams = func() []*pb.AuditStream { return []*pb.AuditStream{{Name: "shard/7", Keyspace: "users", ShardId: 7}} }
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := New(ctx, Config{Endpoints: []string{outside.addr}, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	streams, err := c.AuditStreams(ctx, "users", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(streams) != 1 || streams[0].Name != "shard/7" {
		t.Errorf("streams %v", streams)
	}
	if inside.calls != 1 || outside.calls != 1 {
		t.Errorf("calls: outside %d, inside %d; want one each", outside.calls, inside.calls)
	}
	if _, err := c.AuditEntries(ctx, inside.addr, &pb.AuditEntriesRequest{ShardId: 7, Limit: 10001}); !errors.Is(err, ErrInvalidArgument) ||
		!strings.Contains(err.Error(), "10001") {
		t.Errorf("limit 10001: %v", err)
	}
}
