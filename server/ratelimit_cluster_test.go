package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/internal/testcluster"
	"github.com/clover-kv/clover/server"
)

// rateLimited sets every node's per-caller request rate and burst.
func rateLimited(rate float64, burst int) testcluster.Option {
	return func(cfg *server.Config) { cfg.RequestRate, cfg.RequestBurst = rate, burst }
}

// fromIP dials from a loopback address of its own, so that a node in
// plaintext tells this caller apart from the others by its IP address.
func fromIP(ip string) func(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
}

// callerClient is a client of the cluster dialing from ip.
func callerClient(t *testing.T, ctx context.Context, endpoints []string, ip string, cfg client.Config) *client.Client {
	t.Helper()
	cfg.Endpoints, cfg.Dial, cfg.Insecure = endpoints, fromIP(ip), true
	cl, err := client.New(ctx, cfg)
	if err != nil {
		t.Fatalf("client from %s: %v", ip, err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

var oneReplica = client.Policy{AllowJurisdictions: []string{"EEA"}, Replicas: 1, Class: "personal"}

// A caller past its request rate gets ErrResourceExhausted, and its
// refused write was not applied, while another caller is served.
func TestRequestRateIsPerCaller(t *testing.T) {
	c := testcluster.Start(t, threeEEANodes()[:1], rateLimited(1, 8))
	ctx := ctxT(t)
	admin := callerClient(t, ctx, c.Endpoints(), "127.0.0.4", client.Config{})
	if _, err := admin.CreateKeyspace(ctx, "users", 1, oneReplica); err != nil {
		t.Fatal(err)
	}
	// One attempt per request: the client's own retries would wait for
	// the budget to refill.
	greedy := callerClient(t, ctx, c.Endpoints(), "127.0.0.2", client.Config{Retry: client.RetryPolicy{MaxAttempts: 1}})
	var refused []byte
	for i := 0; i < 500 && refused == nil; i++ {
		k := fmt.Appendf(nil, "greedy/%d", i)
		_, err := greedy.Put(ctx, "users", k, []byte("v"))
		switch {
		case errors.Is(err, client.ErrResourceExhausted):
			refused = k
		case err != nil:
			t.Fatalf("put %d: %v", i, err)
		}
	}
	if refused == nil {
		t.Fatal("500 puts in a row from one caller, none refused at a rate of 1 a second")
	}
	other := callerClient(t, ctx, c.Endpoints(), "127.0.0.3", client.Config{})
	v, err := other.Put(ctx, "users", []byte("other"), []byte("served"))
	if err != nil {
		t.Fatalf("another caller's put: %v", err)
	}
	if kv, err := other.Get(ctx, "users", []byte("other")); err != nil || kv.Version != v {
		t.Fatalf("another caller's get: %+v, %v", kv, err)
	}
	if _, err := other.Get(ctx, "users", refused); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("the refused put: get says %v, want ErrNotFound (not applied)", err)
	}
}

// On KV.Stream each request over the caller's rate gets its own
// ResourceExhausted result; the others are served, and the stream goes on
// serving once the budget refills.
func TestRequestRateRefusesStreamRequestsOneByOne(t *testing.T) {
	c := testcluster.Start(t, threeEEANodes()[:1], rateLimited(0.5, 5))
	ctx := ctxT(t)
	admin := callerClient(t, ctx, c.Endpoints(), "127.0.0.4", client.Config{})
	if _, err := admin.CreateKeyspace(ctx, "users", 1, oneReplica); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(c.Endpoints()[0], grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(fromIP("127.0.0.2")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, err := pb.NewKVClient(conn).Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	get := func(id uint64) *pb.StreamOp {
		return &pb.StreamOp{Id: id, Op: &pb.StreamOp_Get{Get: &pb.GetRequest{Keyspace: "users", Key: []byte("k")}}}
	}
	const n = 50
	req := &pb.StreamRequest{}
	for id := uint64(1); id <= n; id++ {
		req.Ops = append(req.Ops, get(id))
	}
	if err := st.Send(req); err != nil {
		t.Fatal(err)
	}
	results := map[uint64]*pb.StreamResult{}
	for len(results) < n {
		resp, err := st.Recv()
		if err != nil {
			t.Fatalf("stream broke after %d results: %v", len(results), err)
		}
		for _, r := range resp.Results {
			results[r.Id] = r
		}
	}
	served, refused := 0, 0
	for id := uint64(1); id <= n; id++ {
		switch r := results[id].GetResult().(type) {
		case *pb.StreamResult_Get:
			served++
		case *pb.StreamResult_Error:
			if codes.Code(r.Error.Code) != codes.ResourceExhausted || r.Error.Detail.GetKind() != pb.ErrorDetail_KIND_RESOURCE_EXHAUSTED {
				t.Fatalf("request %d: %v, want ResourceExhausted with KIND_RESOURCE_EXHAUSTED", id, r.Error)
			}
			refused++
		default:
			t.Fatalf("request %d: no result (%v)", id, results[id])
		}
	}
	if served == 0 || refused < n-10 {
		t.Fatalf("%d served, %d refused of %d at once with a burst of 5", served, refused, n)
	}
	// The same stream serves again once the bucket has a token.
	for id := uint64(n + 1); ; id++ {
		if err := st.Send(&pb.StreamRequest{Ops: []*pb.StreamOp{get(id)}}); err != nil {
			t.Fatal(err)
		}
		resp, err := st.Recv()
		if err != nil {
			t.Fatalf("stream broke after the refusals: %v", err)
		}
		if _, ok := resp.Results[0].Result.(*pb.StreamResult_Get); ok {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the stream never served again")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Requests one node forwards to another are not counted against anyone:
// many callers, each within its rate at a follower, together send the
// leader more than one caller's burst, and all are served.
func TestRequestRateSparesForwardedRequests(t *testing.T) {
	c := testcluster.Start(t, threeEEANodes(), rateLimited(1, 3))
	ctx := ctxT(t)
	admin := callerClient(t, ctx, c.Endpoints(), "127.0.0.9", client.Config{})
	if _, err := admin.CreateKeyspace(ctx, "users", 1, eea); err != nil {
		t.Fatal(err)
	}
	var follower string
	c.WaitFor(20*time.Second, "a leader", func() bool {
		k, err := admin.Keyspace(ctx, "users")
		if err != nil || k.Shards[0].Leader == "" {
			return false
		}
		for _, r := range k.Shards[0].Replicas {
			if r != k.Shards[0].Leader {
				follower = r
			}
		}
		return follower != ""
	})
	at := []string{c.Node(follower).GRPCAddr()}
	for i, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.5", "127.0.0.6"} {
		cl := callerClient(t, ctx, at, ip, client.Config{Direct: true, Retry: client.RetryPolicy{MaxAttempts: 1}})
		for j := range 2 {
			if _, err := cl.Put(ctx, "users", fmt.Appendf(nil, "k%d-%d", i, j), []byte("v")); err != nil {
				t.Fatalf("caller %s, put %d through follower %s: %v", ip, j, follower, err)
			}
		}
	}
}
