package client

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/internal/keys"
)

// table is a routing table response with one keyspace of n shards whose
// ranges come from keys.Ranges, every shard on replicas with leader.
func table(ks string, n int, nodes map[string]string, replicas []string, leader string) *pb.RoutingTableResponse {
	resp := &pb.RoutingTableResponse{MetaIndex: 7}
	for _, id := range slices.Sorted(maps.Keys(nodes)) {
		resp.Nodes = append(resp.Nodes, &pb.NodeInfo{Id: id, GrpcAddr: nodes[id], Live: true})
	}
	k := &pb.Keyspace{Name: ks}
	for i, r := range keys.Ranges(n) {
		k.Shards = append(k.Shards, &pb.ShardInfo{Id: uint64(100 + i), HashStart: r.Start, HashEnd: r.End, Replicas: replicas, Leader: leader})
	}
	resp.Keyspaces = append(resp.Keyspaces, k)
	return resp
}

// The client routes a key to the shard whose hash range holds the key's
// hash, as the server does with keys.ShardIndex.
func TestRoutingAgreesWithShardIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 3, 8, 16, 64} {
		resp := table("ks", n, map[string]string{"a": "10.0.0.1:7400"}, []string{"a"}, "a")
		rt := buildRoutes(resp)
		for i := 0; i < 2000; i++ {
			key := make([]byte, 1+r.IntN(40))
			for j := range key {
				key[j] = byte(r.UintN(256))
			}
			h := keys.Hash(key)
			sh := rt.shard("ks", h)
			idx := keys.ShardIndex(h, n)
			want := resp.Keyspaces[0].Shards[idx]
			if sh == nil || sh.id != want.Id {
				t.Fatalf("%d shards: key with hash %016x routed to %v, want shard %d", n, h, sh, want.Id)
			}
			if h < want.HashStart || h > want.HashEnd {
				t.Fatalf("%d shards: hash %016x outside shard %d's range %016x-%016x", n, h, want.Id, want.HashStart, want.HashEnd)
			}
		}
	}
	rt := buildRoutes(table("ks", 4, nil, nil, ""))
	if rt.shard("other", 0) != nil {
		t.Error("unknown keyspace routed to a shard")
	}
}

func TestAddrFor(t *testing.T) {
	nodes := map[string]string{"a": "10.0.0.1:7400", "b": "10.0.0.2:7400", "c": "10.0.0.3:7400"}
	resp := table("ks", 2, nodes, []string{"a", "b", "c"}, "b")
	resp.Nodes[2].Live = false // c is down
	rt := buildRoutes(resp)
	h := uint64(0) // shard 0

	if got := rt.addrFor("ks", h, false, "", 0, 0); got != nodes["b"] {
		t.Errorf("leader read goes to %q, want the leader %q", got, nodes["b"])
	}
	// Avoiding the leader (it just failed) falls back to a live replica.
	for attempt := 0; attempt < 6; attempt++ {
		got := rt.addrFor("ks", h, false, nodes["b"], attempt, 0)
		if got != nodes["a"] {
			t.Errorf("attempt %d avoiding b: %q, want a (c is down)", attempt, got)
		}
	}
	// Follower reads spread over live replicas.
	seen := map[string]bool{}
	for attempt := 0; attempt < 6; attempt++ {
		seen[rt.addrFor("ks", h, true, "", attempt, 0)] = true
	}
	if !seen[nodes["a"]] || !seen[nodes["b"]] || seen[nodes["c"]] || len(seen) != 2 {
		t.Errorf("follower reads went to %v, want a and b only", seen)
	}
	// First attempts of successive follower reads take turns among them.
	seen = map[string]bool{}
	for spread := 0; spread < 6; spread++ {
		seen[rt.addrFor("ks", h, true, "", 0, spread)] = true
	}
	if !seen[nodes["a"]] || !seen[nodes["b"]] || len(seen) != 2 {
		t.Errorf("first attempts of follower reads went to %v, want a and b", seen)
	}
	if got := rt.addrFor("nope", h, false, "", 0, 0); got != "" {
		t.Errorf("unknown keyspace: %q", got)
	}
	if got := rt.anyPermitted("ks", "", 0); got != nodes["b"] {
		t.Errorf("anyPermitted: %q", got)
	}
}

func TestLearnAndForgetLeader(t *testing.T) {
	nodes := map[string]string{"a": "10.0.0.1:7400", "b": "10.0.0.2:7400"}
	c := &Client{routes: buildRoutes(table("ks", 4, nodes, []string{"a", "b"}, "a"))}
	key := []byte("user/1")
	other := otherShardKey(t, key, 4)
	h, ho := keys.Hash(key), keys.Hash(other)

	c.learnLeader("ks", key, nodes["b"])
	if got := c.routes.addrFor("ks", h, false, "", 0, 0); got != nodes["b"] {
		t.Errorf("after learning b: %q", got)
	}
	if got := c.routes.addrFor("ks", ho, false, "", 0, 0); got != nodes["a"] {
		t.Errorf("another shard's leader changed to %q", got)
	}
	c.forgetLeader("ks", key)
	if l := c.routes.shard("ks", h).leader.Load(); l != nil {
		t.Errorf("leader still %q after forgetting", *l)
	}
	// Without a key (scans, admin calls) or for an unknown keyspace, nothing happens.
	c.learnLeader("ks", nil, nodes["b"])
	c.learnLeader("nope", key, nodes["b"])
	c.forgetLeader("nope", key)
	if got := c.routes.addrFor("ks", ho, false, "", 0, 0); got != nodes["a"] {
		t.Errorf("leader of %q changed to %q", other, got)
	}
}

// otherShardKey returns a key in a different shard from key.
func otherShardKey(t *testing.T, key []byte, n int) []byte {
	t.Helper()
	for i := 0; i < 1000; i++ {
		k := []byte(fmt.Sprintf("user/%d", i))
		if keys.ShardIndex(keys.Hash(k), n) != keys.ShardIndex(keys.Hash(key), n) {
			return k
		}
	}
	t.Fatal("no key in another shard")
	return nil
}

// A node that is not the leader names it; the client goes there, remembers
// it for that shard, and sends the next request there directly.
func TestLeaderHintLearned(t *testing.T) {
	a, b := startFake(t), startFake(t)
	routes := table("ks", 4, map[string]string{"a": a.addr, "b": b.addr}, []string{"a", "b"}, "a")
	a.setRoutes(routes)
	b.setRoutes(routes)
	a.put = func(*pb.PutRequest) (*pb.PutResponse, error) { return nil, notLeader(b.addr) }
	b.put = func(*pb.PutRequest) (*pb.PutResponse, error) { return &pb.PutResponse{Version: 9}, nil }

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(ctx, Config{Insecure: true, Endpoints: []string{a.addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	key := []byte("user/1")
	for i := 0; i < 3; i++ {
		v, err := c.Put(ctx, "ks", key, []byte("v"))
		if err != nil || v != 9 {
			t.Fatalf("put %d: version %d, %v", i, v, err)
		}
	}
	if a.kvCalls() != 1 || b.kvCalls() != 3 {
		t.Fatalf("calls: a %d (want 1: the first put only), b %d (want 3)", a.kvCalls(), b.kvCalls())
	}
	// The hint is for that shard: a key of another shard still goes to a first.
	if _, err := c.Put(ctx, "ks", otherShardKey(t, key, 4), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if a.kvCalls() != 2 || b.kvCalls() != 4 {
		t.Fatalf("calls after a put to another shard: a %d (want 2), b %d (want 4)", a.kvCalls(), b.kvCalls())
	}
}

// A node that keeps naming itself as the leader gets no busy loop: the
// client gives up after Retry.MaxAttempts with ErrUnavailable.
func TestNotLeaderWithoutUsefulHint(t *testing.T) {
	a := startFake(t)
	a.setRoutes(table("ks", 1, map[string]string{"a": a.addr}, []string{"a"}, "a"))
	a.put = func(*pb.PutRequest) (*pb.PutResponse, error) { return nil, notLeader(a.addr) }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(ctx, Config{Insecure: true, Endpoints: []string{a.addr},
		Retry: RetryPolicy{MaxAttempts: 4, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Put(ctx, "ks", []byte("k"), []byte("v"))
	if kindOf(err) != pb.ErrorDetail_KIND_NOT_LEADER {
		t.Fatalf("got %v, want the last not-leader error", err)
	}
	if a.kvCalls() != 4 {
		t.Errorf("%d attempts, want 4", a.kvCalls())
	}
}

// BenchmarkRoutingLookup measures routing one key to its shard leader's
// address in a table of 1,000 shards (hash, shard lookup, leader load).
//
//	go test ./client -run '^$' -bench RoutingLookup
func BenchmarkRoutingLookup(b *testing.B) {
	nodes := map[string]string{"a": "10.0.0.1:7400", "b": "10.0.0.2:7400", "c": "10.0.0.3:7400"}
	rt := buildRoutes(table("ks", 1000, nodes, []string{"a", "b", "c"}, "b"))
	ks := make([][]byte, 1024)
	for i := range ks {
		ks[i] = []byte(fmt.Sprintf("user%012d", i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if rt.addrFor("ks", keys.Hash(ks[i&1023]), false, "", 0, 0) == "" {
			b.Fatal("no route")
		}
	}
}
