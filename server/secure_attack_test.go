package server_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/internal/errkind"
	"github.com/clover-kv/clover/internal/gossiptls"
	"github.com/clover-kv/clover/internal/testcerts"
	"github.com/clover-kv/clover/internal/testcluster"
	"github.com/clover-kv/clover/internal/tlsfiles"
	"github.com/clover-kv/clover/placement"
	"github.com/clover-kv/clover/server"
)

// The attacks on secure mode, each against a real in-process cluster of
// the demo's four nodes (two in Ireland, one in Norway, one in the US)
// whose nodes hold certificates of one PKI.

// secureDemo starts the demo cluster in secure mode with users (personal,
// EEA, 8 shards) and videos (public, anywhere, 4 shards), each with a
// record written by alice, a writer and reader working from IE.
type secureDemo struct {
	*testcluster.Cluster
	pki   *testcerts.PKI
	logs  *testcluster.Logs
	admin *client.Client
	alice *client.Client
}

func startSecureDemo(t *testing.T, opts ...testcluster.Option) *secureDemo {
	t.Helper()
	d := &secureDemo{pki: testcerts.NewPKI(t, "clover-demo"), logs: testcluster.NewLogs()}
	opts = append([]testcluster.Option{testcluster.Secure(t, d.pki), testcluster.CaptureLogs(d.logs)}, opts...)
	d.Cluster = testcluster.Start(t, testcluster.DemoNodes(), opts...)
	ctx := ctxT(t)
	d.admin = d.ClientAs(t, d.pki.User(t, "olav", "admin,auditor", "NO"))
	if _, err := d.admin.CreateKeyspace(ctx, "users", 8, eea); err != nil {
		t.Fatal(err)
	}
	if _, err := d.admin.CreateKeyspace(ctx, "videos", 4, client.Policy{Replicas: 3, Class: "public"}); err != nil {
		t.Fatal(err)
	}
	d.alice = d.ClientAs(t, d.pki.User(t, "alice", "reader,writer", "IE"))
	for _, ks := range []string{"users", "videos"} {
		if _, err := d.alice.Put(ctx, ks, []byte("rec/1"), []byte("value of "+ks)); err != nil {
			t.Fatalf("alice writes %s: %v", ks, err)
		}
	}
	return d
}

// refusedBy reports whether err is a gateway refusal by rule.
func refusedBy(err error, rule string) bool {
	var e *client.Error
	return errors.Is(err, client.ErrPermissionDenied) && errors.As(err, &e) && e.Rule == rule
}

// A reader working from CN is refused users (personal, EEA) even through
// an Irish node, on the stream and on unary calls, and may read videos;
// an auditor proves placement but reads no key of any keyspace; an admin
// administers but reads no data; every refusal names its rule and is
// counted.
func TestGatewayDecidesByRoleAndCallerJurisdiction(t *testing.T) {
	d := startSecureDemo(t)
	ctx := ctxT(t)
	chen := d.pki.User(t, "chen", "reader", "CN")
	for _, unary := range []bool{false, true} {
		tc, err := tlsfiles.Client(chen.Cert, chen.Key, chen.CA)
		if err != nil {
			t.Fatal(err)
		}
		cl, err := client.New(ctx, client.Config{Endpoints: d.Endpoints("ie-1"), TLS: tc, Direct: true, Unary: unary})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if _, err := cl.Get(ctx, "users", []byte("rec/1")); !refusedBy(err, "caller-jurisdiction") {
			t.Fatalf("chen (CN) reads users through ie-1 (unary %v): %v, want refusal by caller-jurisdiction", unary, err)
		} else if strings.Contains(err.Error(), "rec/1") || strings.Contains(err.Error(), "value of") {
			t.Fatalf("the refusal names a key or value: %v", err)
		}
		if kv, err := cl.Get(ctx, "videos", []byte("rec/1")); err != nil || string(kv.Value) != "value of videos" {
			t.Fatalf("chen reads videos (unary %v): %+v, %v", unary, kv, err)
		}
		if _, err := cl.Put(ctx, "videos", []byte("rec/2"), []byte("x")); !refusedBy(err, "role") {
			t.Fatalf("chen, a reader, writes videos: %v, want refusal by role", err)
		}
	}
	if kv, err := d.alice.Get(ctx, "users", []byte("rec/1")); err != nil || string(kv.Value) != "value of users" {
		t.Fatalf("alice (IE) reads users: %+v, %v", kv, err)
	}

	nora := d.ClientAs(t, d.pki.User(t, "nora", "auditor", "NO"))
	if rep, err := nora.VerifyPlacement(ctx); err != nil || rep.ShardsChecked != 12 {
		t.Fatalf("nora verifies placement: %+v, %v", rep, err)
	}
	if _, err := nora.PlacementHistory(ctx, "users", 10); err != nil {
		t.Fatalf("nora reads the placement history: %v", err)
	}
	for _, ks := range []string{"users", "videos"} {
		if _, err := nora.Get(ctx, ks, []byte("rec/1")); !refusedBy(err, "role") {
			t.Fatalf("nora, an auditor, reads %s: %v, want refusal by role", ks, err)
		}
		if _, _, err := nora.Scan(ctx, ks); !refusedBy(err, "role") {
			t.Fatalf("nora scans %s: %v, want refusal by role", ks, err)
		}
	}
	if _, err := nora.SetPolicy(ctx, "videos", client.Policy{AllowJurisdictions: []string{"EEA"}}); !refusedBy(err, "role") {
		t.Fatalf("nora changes a policy: %v, want refusal by role", err)
	}
	if _, err := nora.CreateKeyspace(ctx, "mine", 1, eea); !refusedBy(err, "role") {
		t.Fatalf("nora creates a keyspace: %v, want refusal by role", err)
	}
	if _, err := d.admin.Get(ctx, "users", []byte("rec/1")); !refusedBy(err, "role") {
		t.Fatalf("olav, an admin, reads users: %v, want refusal by role", err)
	}
	if _, err := d.alice.ClusterStatus(ctx); !refusedBy(err, "role") {
		t.Fatalf("alice, a reader, reads cluster status: %v, want refusal by role", err)
	}
	id, err := nora.WhoAmI(ctx)
	if err != nil || id.Kind != "user" || id.Name != "nora" || id.Country != "NO" || !slices.Equal(id.Roles, []string{"auditor"}) ||
		!slices.Contains(id.Jurisdictions, "EEA") || id.Insecure {
		t.Fatalf("whoami as nora: %+v, %v", id, err)
	}

	st, err := d.admin.ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	counted := map[string]uint64{}
	for _, n := range st.Nodes {
		for r, c := range n.Refusals {
			counted[r] += c
		}
	}
	if counted["caller-jurisdiction"] < 2 || counted["role"] < 8 {
		t.Fatalf("refusals counted by rule: %v", counted)
	}
	if st.Insecure {
		t.Fatal("cluster status says insecure")
	}
}

// A user certificate cannot call the Internal service, speak Raft or
// gossip; a node certificate is not a user; and a node outside a
// keyspace's residency that forges a forwarded request for a user gets
// nothing of it.
func TestCertificatesOnlyDoWhatTheirPurposeAllows(t *testing.T) {
	d := startSecureDemo(t)
	ctx := ctxT(t)
	alice := d.pki.User(t, "alice", "reader,writer", "IE")
	ie1 := d.Node("ie-1").Server

	conn := func(f testcerts.Files) *grpc.ClientConn {
		tc, err := tlsfiles.Client(f.Cert, f.Key, f.CA)
		if err != nil {
			t.Fatal(err)
		}
		cc, err := grpc.NewClient(ie1.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(tc)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	ruleOf := func(err error) string {
		st, _ := status.FromError(err)
		if st.Code() != codes.PermissionDenied {
			return "code " + st.Code().String()
		}
		if d := errkind.Detail(st); d != nil {
			return d.Rule
		}
		return ""
	}

	// A user calls Internal: its scan would return data.
	_, err := pb.NewInternalClient(conn(alice)).ShardScan(ctx, &pb.ShardScanRequest{Keyspace: "users", ShardId: 1})
	if r := ruleOf(err); r != "node-only" {
		t.Fatalf("a user's ShardScan: %v (rule %q), want refusal by node-only", err, r)
	}
	_, err = pb.NewInternalClient(conn(alice)).ChangeReplica(ctx, &pb.ChangeReplicaRequest{ShardId: 1, NodeId: "us-1"})
	if r := ruleOf(err); r != "node-only" {
		t.Fatalf("a user's ChangeReplica: %v (rule %q), want refusal by node-only", err, r)
	}

	// A user cannot speak Raft or gossip: the listeners end its connection.
	for name, addr := range map[string]string{"raft": ie1.RaftAddr(), "gossip": ie1.GossipAddr()} {
		tc, err := tlsfiles.Client(alice.Cert, alice.Key, alice.CA)
		if err != nil {
			t.Fatal(err)
		}
		tc.ServerName = "127.0.0.1"
		c, err := tls.Dial("tcp", addr, tc)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			_, _ = c.Write([]byte("CLVR\x02"))
			_, err = io.ReadFull(c, make([]byte, 1))
			c.Close()
		}
		if err == nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			t.Fatalf("a user's connection to the %s listener: %v, want it refused", name, err)
		}
	}

	// A node certificate, the US node's or an Irish node's, is not a user.
	for _, id := range []string{"us-1", "ie-2"} {
		if _, err := d.NewClient(t, d.pki.NodeFiles(id)); !refusedBy(err, "node-not-user") {
			t.Fatalf("%s's certificate as a client: %v, want refusal by node-not-user", id, err)
		}
	}

	// us-1 forges a forwarded read for alice: users may not live in the
	// US, so us-1 gets nothing of it; videos may.
	us1 := pb.NewKVClient(conn(d.pki.NodeFiles("us-1")))
	forged := metadata.AppendToOutgoingContext(ctx, "clover-forwarded", "1", "clover-on-behalf-of", "user;alice;reader,writer;IE")
	if _, err := us1.Get(forged, &pb.GetRequest{Keyspace: "users", Key: []byte("rec/1")}); ruleOf(err) != "node-not-user" {
		t.Fatalf("us-1 forging alice on users: %v, want refusal by node-not-user", err)
	}
	_, err = pb.NewInternalClient(conn(d.pki.NodeFiles("us-1"))).ShardScan(ctx, &pb.ShardScanRequest{Keyspace: "users", ShardId: 1})
	if ruleOf(err) != "node-not-user" {
		t.Fatalf("us-1 scanning a users shard: %v, want refusal by node-not-user", err)
	}
	if _, err := us1.Get(forged, &pb.GetRequest{Keyspace: "videos", Key: []byte("rec/1")}); err != nil && ruleOf(err) != "code Unavailable" {
		t.Fatalf("us-1 forwarding alice's read of videos: %v", err)
	}

	// Only the meta leader's placement controller changes memberships.
	st, err := d.admin.ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"no-1", "us-1", "ie-2"} {
		if id == st.MetaLeader {
			continue
		}
		_, err := pb.NewInternalClient(conn(d.pki.NodeFiles(id))).ChangeReplica(ctx,
			&pb.ChangeReplicaRequest{Kind: pb.ChangeReplicaRequest_KIND_REMOVE, ShardId: 1, NodeId: "ie-2"})
		if r := ruleOf(err); r != "node-only" {
			t.Fatalf("%s, not the meta leader, asks for a membership change: %v (rule %q), want refusal by node-only", id, err, r)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// gossipClaims is what a member gossips of itself (the node's metadata).
type gossipClaims struct {
	ID       string             `json:"id"`
	Locality placement.Locality `json:"loc"`
	GRPC     string             `json:"grpc"`
	Raft     string             `json:"raft"`
	Gossip   string             `json:"gossip"`
}

// rogue is a gossip member that says what it likes of itself, and answers
// at the gRPC address it claims with the same lies, presenting a real node
// certificate of the cluster.
type rogue struct {
	claims gossipClaims
}

func (r *rogue) NodeMeta(int) []byte             { b, _ := json.Marshal(r.claims); return b }
func (r *rogue) NotifyMsg([]byte)                {}
func (r *rogue) GetBroadcasts(int, int) [][]byte { return nil }
func (r *rogue) LocalState(bool) []byte          { return nil }
func (r *rogue) MergeRemoteState([]byte, bool)   {}
func (r *rogue) whoIs() *pb.NodeInfo             { return rogueInfo(r.claims) }
func rogueInfo(c gossipClaims) *pb.NodeInfo {
	return &pb.NodeInfo{Id: c.ID, Locality: &pb.Locality{Country: c.Locality.Country, Region: c.Locality.Region, Zone: c.Locality.Zone},
		GrpcAddr: c.GRPC, RaftAddr: c.Raft, GossipAddr: c.Gossip, Live: true}
}

// fakeInternal answers NodeStatus with the rogue's claims.
type fakeInternal struct {
	pb.UnimplementedInternalServer
	r *rogue
}

func (f *fakeInternal) NodeStatus(context.Context, *pb.NodeStatusRequest) (*pb.NodeStatusResponse, error) {
	return &pb.NodeStatusResponse{Status: &pb.NodeStatus{Reachable: true, Node: f.r.whoIs()}}, nil
}

// startRogue joins the cluster at join as a member named id at locality
// loc, presenting the node certificate f.
func startRogue(t *testing.T, f testcerts.Files, id, loc, join string) *rogue {
	t.Helper()
	srvTLS, cliTLS, err := tlsfiles.Node(f.Cert, f.Key, f.CA)
	if err != nil {
		t.Fatal(err)
	}
	l, err := placement.ParseLocality(loc)
	if err != nil {
		t.Fatal(err)
	}
	r := &rogue{claims: gossipClaims{ID: id, Locality: l}}
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(srvTLS)))
	pb.RegisterInternalServer(gs, &fakeInternal{r: r})
	go func() { _ = gs.Serve(grpcLn) }()
	t.Cleanup(gs.Stop)
	raftLn, err := net.Listen("tcp", "127.0.0.1:0") // accepts, says nothing
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raftLn.Close() })
	tr, err := gossiptls.New(gossiptls.Config{BindAddr: "127.0.0.1:0", ServerTLS: srvTLS, ClientTLS: cliTLS})
	if err != nil {
		t.Fatal(err)
	}
	r.claims.GRPC, r.claims.Raft, r.claims.Gossip = grpcLn.Addr().String(), raftLn.Addr().String(), tr.Addr().String()
	mc := memberlist.DefaultLANConfig()
	mc.Name, mc.Transport, mc.Delegate = id, tr, r
	mc.Logger = log.New(io.Discard, "", 0)
	ml, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ml.Shutdown() })
	if _, err := ml.Join([]string{join}); err != nil {
		t.Fatalf("rogue %s joins: %v", id, err)
	}
	return r
}

// A node presenting another node's certificate (us-1's, claiming to be
// ie-3 in Ireland), and a node whose gossip claims another locality than
// its certificate (de-9, certified in Germany, claiming Ireland), are
// refused: the meta leader never records them, they get no replica, and
// placement stays inside every policy.
func TestNodeClaimsThatDisagreeWithTheirCertificateGetNothing(t *testing.T) {
	d := startSecureDemo(t)
	ctx := ctxT(t)
	join := d.Node("ie-1").Server.GossipAddr()
	mark := d.logs.Mark()
	startRogue(t, d.pki.NodeFiles("us-1"), "ie-3", "country=IE,region=ie-dublin,zone=c", join)
	startRogue(t, d.pki.Node(t, "de-9", "country=DE,region=de-fra,zone=a"), "de-9", "country=IE,region=ie-cork,zone=a", join)
	for _, id := range []string{"ie-3", "de-9"} {
		if _, ok := d.logs.Wait(mark, 30*time.Second, func(r testcluster.LogRecord) bool {
			return strings.Contains(r.Msg, "claims do not hold") && r.Attrs["member"] == id
		}); !ok {
			t.Errorf("no node refused %s's claims", id)
		}
	}
	// Rounds of the controller after the refusal place nothing on them.
	since := time.Now()
	d.WaitFor(30*time.Second, "three placement rounds after the rogues joined", func() bool {
		rep, err := d.admin.VerifyPlacement(ctx)
		return err == nil && rep.Checked.Sub(since) > 3*time.Second
	})
	st, err := d.admin.ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st.Nodes {
		if n.ID == "ie-3" || n.ID == "de-9" {
			t.Fatalf("the catalogue records %s: %+v", n.ID, n)
		}
	}
	for _, ks := range []string{"users", "videos"} {
		k, err := d.admin.Keyspace(ctx, ks)
		if err != nil {
			t.Fatal(err)
		}
		for _, sh := range k.Shards {
			if slices.Contains(sh.Replicas, "ie-3") || slices.Contains(sh.Replicas, "de-9") {
				t.Fatalf("%s shard %d has replicas %v", ks, sh.ID, sh.Replicas)
			}
		}
	}
	if rep, err := d.admin.VerifyPlacement(ctx); err != nil || !rep.OK {
		t.Fatalf("placement verify: %+v, %v", rep, err)
	}
}

// A node started in secure mode takes its ID and locality from its
// certificate; configured values that disagree stop it, naming both.
func TestSecureNodeIdentityComesFromItsCertificate(t *testing.T) {
	p := testcerts.NewPKI(t, "clover-demo")
	f := p.Node(t, "us-1", "country=US,region=us-east,zone=a")
	sec, err := tlsfiles.NodeSecure(f.Cert, f.Key, f.CA)
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.DefaultConfig()
	cfg.ServerTLS, cfg.ClientTLS, cfg.TrustDomain = sec.Server, sec.Client, sec.TrustDomain
	cfg.DataDir, cfg.Bootstrap = t.TempDir(), true
	got, err := cfg.WithAttestedIdentity()
	if err != nil || got.NodeID != "us-1" || got.Locality.Country != "US" {
		t.Fatalf("identity from the certificate: %q at %s, %v", got.NodeID, got.Locality, err)
	}
	claimIE := cfg
	claimIE.NodeID = "ie-3"
	claimIE.Locality, _ = placement.ParseLocality("country=IE,region=ie-dublin,zone=a")
	if _, err := server.New(claimIE); !errors.Is(err, server.ErrInvalidConfig) || !strings.Contains(err.Error(), `"ie-3"`) ||
		!strings.Contains(err.Error(), `"us-1"`) {
		t.Fatalf("a node claiming ie-3 with us-1's certificate: %v", err)
	}
	claimIE.NodeID = ""
	if _, err := server.New(claimIE); !errors.Is(err, server.ErrInvalidConfig) || !strings.Contains(err.Error(), "country=IE") ||
		!strings.Contains(err.Error(), "country=US") {
		t.Fatalf("a node claiming IE with a US certificate: %v", err)
	}
	plain := server.DefaultConfig()
	plain.NodeID, plain.Locality, plain.DataDir, plain.Bootstrap = "ie-1", claimIE.Locality, t.TempDir(), true
	if _, err := server.New(plain); !errors.Is(err, server.ErrInvalidConfig) || !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("a node without certificates or --insecure: %v", err)
	}
}
