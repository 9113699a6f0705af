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

// A cluster whose nodes each hold a certificate of the cluster CA runs
// gossip, Raft and gRPC over mutual TLS: nodes join and replicate, a client
// with a certificate of that CA reads and writes, and clients without one,
// or with one of another CA, are turned away.
func TestMutualTLSCluster(t *testing.T) {
	ca := testcerts.NewCA(t, "cluster")
	c := testcluster.Start(t, threeEEANodes(), testcluster.MutualTLS(t, ca))
	ctx := ctxT(t)
	dial := func(ca *testcerts.CA, name string) (*client.Client, error) {
		cfg := client.Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second,
			Retry: client.RetryPolicy{MaxAttempts: 2, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}}
		if ca != nil {
			cert, key := ca.Issue(t, name)
			tc, err := tlsfiles.Client(cert, key, ca.CAFile)
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

	cl, err := dial(ca, "app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateKeyspace(ctx, "users", 2, eea); err != nil {
		t.Fatal(err)
	}
	v, err := cl.Put(ctx, "users", []byte("alice"), []byte("alice@example.eu"))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := cl.Get(ctx, "users", []byte("alice"))
	if err != nil || kv.Version != v || !bytes.Equal(kv.Value, []byte("alice@example.eu")) {
		t.Fatalf("linearizable read over TLS: %+v, %v", kv, err)
	}
	// Every replica applies the write: Raft between the nodes runs over TLS.
	c.WaitFor(20*time.Second, "every replica to apply the write", func() bool {
		rep, err := cl.CheckReplicas(ctx, "users", time.Second)
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

	if plain, err := dial(nil, ""); err == nil {
		if _, err := plain.Get(ctx, "users", []byte("alice")); err == nil {
			t.Fatal("a plaintext client read from a TLS cluster")
		}
	}
	if stranger, err := dial(testcerts.NewCA(t, "other"), "stranger"); err == nil {
		if _, err := stranger.Get(ctx, "users", []byte("alice")); err == nil {
			t.Fatal("a client with another CA's certificate read from the cluster")
		}
	}
}
