package server_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/internal/testcerts"
	"github.com/clover-kv/clover/internal/testcluster"
	"github.com/clover-kv/clover/internal/tlsfiles"
)

// A cluster in secure mode runs gossip, Raft and gRPC over mutual TLS:
// nodes join and replicate, users with certificates of the cluster CA read
// and write as their roles allow, and clients without one, or with one of
// another CA, are turned away.
func TestMutualTLSCluster(t *testing.T) {
	p := testcerts.NewPKI(t, "tls-test")
	c := testcluster.Start(t, threeEEANodes(), testcluster.Secure(t, p))
	ctx := ctxT(t)
	dial := func(f *testcerts.Files, insecure bool) (*client.Client, error) {
		cfg := client.Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second, Insecure: insecure,
			Retry: client.RetryPolicy{MaxAttempts: 2, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}}
		if f != nil {
			tc, err := tlsfiles.Client(f.Cert, f.Key, f.CA)
			if err != nil {
				t.Fatal(err)
			}
			cfg.TLS = tc
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		cl, err := client.New(cctx, cfg)
		if err == nil {
			t.Cleanup(func() { cl.Close() })
		}
		return cl, err
	}

	admin := c.ClientAs(t, p.User(t, "olav", "admin,auditor", "NO"))
	if _, err := admin.CreateKeyspace(ctx, "users", 2, eea); err != nil {
		t.Fatal(err)
	}
	alice := c.ClientAs(t, p.User(t, "alice", "reader,writer", "IE"))
	v, err := alice.Put(ctx, "users", []byte("alice"), []byte("alice@example.eu"))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := alice.Get(ctx, "users", []byte("alice"))
	if err != nil || kv.Version != v || !bytes.Equal(kv.Value, []byte("alice@example.eu")) {
		t.Fatalf("linearizable read over TLS: %+v, %v", kv, err)
	}
	// Every replica applies the write: Raft between the nodes runs over TLS.
	c.WaitFor(20*time.Second, "every replica to apply the write", func() bool {
		rep, err := admin.CheckReplicas(ctx, "users", time.Second)
		if err != nil || !rep.OK {
			return false
		}
		keys := uint64(0)
		for _, s := range rep.Shards {
			if len(s.Replicas) != 3 {
				return false
			}
			keys += s.Replicas[0].Keys
		}
		return keys == 1
	})

	if plain, err := dial(nil, true); err == nil {
		if _, err := plain.Get(ctx, "users", []byte("alice")); err == nil {
			t.Fatal("a plaintext client read from a TLS cluster")
		}
	}
	other := testcerts.NewPKI(t, "tls-test").User(t, "mallory", "reader,writer", "IE")
	if stranger, err := dial(&other, false); err == nil {
		if _, err := stranger.Get(ctx, "users", []byte("alice")); err == nil {
			t.Fatal("a client with another CA's certificate read from the cluster")
		}
	}
}
