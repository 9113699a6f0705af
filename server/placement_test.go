package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/internal/testcluster"
	"github.com/clover-kv/clover/raftfsm"
	"github.com/clover-kv/clover/server"
)

func fastHealing(cfg *server.Config) {
	cfg.DeadNodeGrace = time.Second
	cfg.ReconcileInterval = 200 * time.Millisecond
}

func fiveEEANodes() []testcluster.NodeSpec {
	return []testcluster.NodeSpec{
		{ID: "ie-1", Locality: "country=IE,region=ie-dublin,zone=a"},
		{ID: "ie-2", Locality: "country=IE,region=ie-dublin,zone=b"},
		{ID: "ie-3", Locality: "country=IE,region=ie-cork,zone=a"},
		{ID: "no-1", Locality: "country=NO,region=no-hamar,zone=a"},
		{ID: "no-2", Locality: "country=NO,region=no-oslo,zone=a"},
	}
}

// shardsConform reports whether every shard of ks has exactly want voters,
// none on the excluded nodes, and nothing else in its configuration.
func shardsConform(ctx context.Context, cl *client.Client, ks string, want int, excluded ...string) bool {
	st, err := cl.KeyspaceStatus(ctx, ks)
	if err != nil {
		return false
	}
	for _, sh := range st.Shards {
		voters := 0
		for _, m := range sh.Members {
			if slices.Contains(excluded, m.Node) || !m.Voter {
				return false
			}
			voters++
		}
		if voters != want || sh.Leader == "" {
			return false
		}
	}
	return true
}

// A 5-node EEA cluster heals after losing a node: every shard returns to 3
// permitted replicas, and the data is all there.
func TestHealsAfterNodeLoss(t *testing.T) {
	c := testcluster.Start(t, fiveEEANodes(), fastHealing)
	ctx := ctxT(t)
	cl := c.Client(t)
	if _, err := cl.CreateKeyspace(ctx, "users", 8, eea); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if _, err := cl.Put(ctx, "users", []byte(fmt.Sprintf("user/%03d", i)), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	ks, err := cl.Keyspace(ctx, "users")
	if err != nil {
		t.Fatal(err)
	}
	victim := ks.Shards[0].Replicas[0]
	start := time.Now()
	c.StopNode(victim)
	cl2 := c.Client(t)
	c.WaitFor(60*time.Second, "every shard back to 3 replicas without "+victim, func() bool {
		return shardsConform(ctx, cl2, "users", 3, victim)
	})
	t.Logf("healed in %v after losing %s", time.Since(start).Round(time.Millisecond), victim)
	for i := 0; i < 100; i++ {
		if _, err := cl2.Get(ctx, "users", []byte(fmt.Sprintf("user/%03d", i))); err != nil {
			t.Fatalf("user/%03d after healing: %v", i, err)
		}
	}
	hist, err := cl2.PlacementHistory(ctx, "users", 1000)
	if err != nil {
		t.Fatal(err)
	}
	removed := 0
	for _, e := range hist {
		if e.Action == "remove-replica" && e.Node == victim {
			removed++
		}
	}
	if removed == 0 {
		t.Fatalf("history records no removal of %s's replicas: %+v", victim, hist)
	}
}

// With only two permitted nodes left and replicas=3, shards stay
// under-replicated, verify says so, and nothing is placed outside.
func TestTooFewPermittedNodesStaysUnderReplicated(t *testing.T) {
	c := testcluster.Start(t, testcluster.DemoNodes(), fastHealing)
	ctx := ctxT(t)
	cl := c.Client(t)
	if _, err := cl.CreateKeyspace(ctx, "users", 4, eea); err != nil {
		t.Fatal(err)
	}
	c.StopNode("no-1")
	cl2 := c.Client(t)
	c.WaitFor(30*time.Second, "verify reports under-replication", func() bool {
		rep, err := cl2.VerifyPlacement(ctx)
		if err != nil || rep.OK {
			return false
		}
		under := 0
		for _, v := range rep.Violations {
			if v.Kind == "under-replicated" {
				under++
			}
		}
		return under == 4
	})
	// Give the controller rounds to (wrongly) act, then look: the US node
	// holds nothing of users, and the status says under-replicated.
	c.WaitFor(30*time.Second, "the dead replica removed and shards reported under-replicated", func() bool {
		st, err := cl2.KeyspaceStatus(ctx, "users")
		if err != nil || st.UnderReplicated != 4 {
			return false
		}
		for _, sh := range st.Shards {
			if len(sh.Members) != 2 {
				return false
			}
		}
		return true
	})
	st, err := cl2.KeyspaceStatus(ctx, "users")
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range st.Shards {
		for _, m := range sh.Members {
			if m.Node == "us-1" {
				t.Fatalf("shard %d placed on us-1", sh.ShardID)
			}
		}
		if len(sh.Problems) == 0 {
			t.Fatalf("shard %d under-replicated without a reason", sh.ShardID)
		}
	}
	if _, err := cl2.Put(ctx, "users", []byte("still"), []byte("writable")); err != nil {
		t.Fatalf("2 of 3 replicas should still take writes: %v", err)
	}
}

// Moving a keyspace held in the US home to the EEA under live traffic: no
// acknowledged write lost, no failed read, and afterwards a canary written
// before the move is in no file under the US node's data directory.
func TestPolicyMigrationUnderLoad(t *testing.T) {
	var logs lockedBuffer
	c := testcluster.Start(t, testcluster.DemoNodes(), fastHealing, func(cfg *server.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	ctx := ctxT(t)
	cl := c.Client(t)
	ks, err := cl.CreateKeyspace(ctx, "videos", 4, client.Policy{Replicas: 3, Class: "public"})
	if err != nil {
		t.Fatal(err)
	}
	onUS := 0
	for _, sh := range ks.Shards {
		if slices.Contains(sh.Replicas, "us-1") {
			onUS++
		}
	}
	if onUS == 0 {
		t.Fatal("spread across regions should put videos replicas on us-1")
	}
	secretKey, secret := []byte("video/secret-"+string(canary(t))), canary(t)
	if _, err := cl.Put(ctx, "videos", secretKey, secret); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(20*time.Second, "the canary on the US node's disk (the test can see data)", func() bool {
		return len(c.FilesContaining("us-1", secret)) > 0
	})

	// Writers and readers through the EEA nodes.
	eeaClient, err := client.New(ctx, client.Config{Insecure: true, Endpoints: c.Endpoints("ie-1", "ie-2", "no-1"),
		Retry: client.RetryPolicy{MaxAttempts: 40, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer eeaClient.Close()
	var (
		mu        sync.Mutex
		acked     = map[string]string{}
		writeErrs []error
		readErrs  []error
		reads     atomic.Int64
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	for w := 0; w < 4; w++ {
		wg.Add(2)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("video/%d/%d", w, i)
				if _, err := eeaClient.Put(ctx, "videos", []byte(k), []byte("v"+k)); err != nil {
					mu.Lock()
					writeErrs = append(writeErrs, err)
					mu.Unlock()
					continue
				}
				mu.Lock()
				acked[k] = "v" + k
				mu.Unlock()
			}
		}(w)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := eeaClient.Get(ctx, "videos", secretKey); err != nil {
					mu.Lock()
					readErrs = append(readErrs, err)
					mu.Unlock()
				}
				reads.Add(1)
			}
		}()
	}
	c.WaitFor(10*time.Second, "traffic flowing", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) > 50 })

	start := time.Now()
	if _, err := cl.SetPolicy(ctx, "videos", client.Policy{AllowJurisdictions: []string{"EEA"}}); err != nil {
		t.Fatal(err)
	}
	// From the moment the policy changed, the US node refuses the keyspace.
	if _, err := c.DirectClient(t, "us-1").Get(ctx, "videos", secretKey); !errors.Is(err, client.ErrResidency) {
		t.Fatalf("US node after the policy change: %v, want ErrResidency", err)
	}
	c.WaitFor(60*time.Second, "every videos shard on 3 EEA replicas", func() bool {
		return shardsConform(ctx, cl, "videos", 3, "us-1")
	})
	moved := time.Since(start)
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	c.WaitFor(10*time.Second, "more writes after the move", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) > n+50 })
	close(stop)
	wg.Wait()
	t.Logf("migration took %v; %d writes acknowledged, %d reads", moved.Round(time.Millisecond), len(acked), reads.Load())
	if len(writeErrs) > 0 || len(readErrs) > 0 {
		t.Fatalf("%d failed writes (first: %v), %d failed reads (first: %v)", len(writeErrs), first(writeErrs), len(readErrs), first(readErrs))
	}
	for k, v := range acked {
		kv, err := cl.Get(ctx, "videos", []byte(k))
		if err != nil || string(kv.Value) != v {
			t.Fatalf("acknowledged write %s lost: %v", k, err)
		}
	}
	rep, err := cl.VerifyPlacement(ctx)
	if err != nil || !rep.OK {
		t.Fatalf("verify after migration: %v %+v", err, rep.Violations)
	}
	c.WaitFor(30*time.Second, "the canary gone from every file under the US node's data dir", func() bool {
		return len(c.FilesContaining("us-1", secret)) == 0
	})
	if bytes.Contains(logs.Bytes(), secret) || bytes.Contains(logs.Bytes(), secretKey) {
		t.Fatal("a user key or value appeared in the logs")
	}
}

func first(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errs[0]
}

// The meta group's stored data and the info-level logs hold no user key or
// value.
func TestNoUserDataInMetaGroupOrLogs(t *testing.T) {
	var logs lockedBuffer
	c := testcluster.Start(t, threeEEANodes(), func(cfg *server.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	ctx := ctxT(t)
	cl := c.Client(t)
	if _, err := cl.CreateKeyspace(ctx, "users", 4, eea); err != nil {
		t.Fatal(err)
	}
	key, value := []byte("user/"+string(canary(t))), canary(t)
	for i := 0; i < 20; i++ {
		k := append(append([]byte{}, key...), byte('a'+i))
		if _, err := cl.Put(ctx, "users", k, value); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.CompareAndSwap(ctx, "users", k, 1, value); !errors.Is(err, client.ErrVersionMismatch) {
			t.Fatalf("cas: %v", err)
		}
	}
	if _, err := c.DirectClient(t, "ie-1").Put(ctx, "users", bytes.Repeat(key, 1000), value); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("oversized key: %v", err)
	}
	if bytes.Contains(logs.Bytes(), key) || bytes.Contains(logs.Bytes(), value) {
		t.Fatal("a user key or value appeared in the logs")
	}
	c.StopNode("ie-1")
	db, err := raftfsm.OpenDB(filepath.Join(c.Node("ie-1").DataDir, "pebble"), raftfsm.DBOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start, end := raftfsm.ShardSpan(0) // the meta group: catalogue and its Raft log
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
		if bytes.Contains(it.Key(), key) || bytes.Contains(it.Value(), key) || bytes.Contains(it.Value(), value) {
			t.Fatalf("user data in the meta group's record %x", it.Key())
		}
	}
	if n == 0 {
		t.Fatal("read nothing of the meta group")
	}
	// The same scan over a user shard finds the value: the check can see data.
	ks, _ := cl.Keyspace(ctx, "users")
	found := false
	for _, sh := range ks.Shards {
		s, e := raftfsm.ShardSpan(sh.ID)
		it2, err := db.NewIter(&pebble.IterOptions{LowerBound: s, UpperBound: e})
		if err != nil {
			t.Fatal(err)
		}
		for ok := it2.First(); ok; ok = it2.Next() {
			found = found || bytes.Contains(it2.Value(), value)
		}
		it2.Close()
	}
	if !found {
		t.Fatal("the scan cannot see user data at all")
	}
}

// With three EEA sites and 3 replicas, losing any one site keeps every shard
// available.
func TestSurvivesLossOfAnySite(t *testing.T) {
	specs := []testcluster.NodeSpec{
		{ID: "d1-a", Locality: "country=IE,region=ie-dublin-1,zone=a"},
		{ID: "d2-a", Locality: "country=IE,region=ie-dublin-2,zone=a"},
		{ID: "no-a", Locality: "country=NO,region=no-hamar,zone=a"},
	}
	c := testcluster.Start(t, specs)
	ctx := ctxT(t)
	cl := c.Client(t)
	if _, err := cl.CreateKeyspace(ctx, "users", 4, eea); err != nil {
		t.Fatal(err)
	}
	keysPerShard := map[uint64][]byte{}
	ks, _ := cl.Keyspace(ctx, "users")
	for i := 0; len(keysPerShard) < len(ks.Shards); i++ {
		k := []byte(fmt.Sprintf("k%d", i))
		if _, err := cl.Put(ctx, "users", k, []byte("v")); err != nil {
			t.Fatal(err)
		}
		keysPerShard[shardOf(ks, k)] = k
	}
	for _, site := range specs {
		c.Net.Isolate(site.ID)
		var others []string
		for _, o := range specs {
			if o.ID != site.ID {
				others = append(others, c.Node(o.ID).GRPCAddr())
			}
		}
		// A retry budget that covers an election (the client's default is
		// about 3 s of backoff).
		sc, err := client.New(ctx, client.Config{Insecure: true, Endpoints: others,
			Retry: client.RetryPolicy{MaxAttempts: 60, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		for id, k := range keysPerShard {
			wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			// A write caught in a leadership change has an unknown outcome
			// and is not retried by the client; writing the same value
			// again is what a caller does then.
			var err error
			for {
				if _, err = sc.Put(wctx, "users", k, []byte("after losing "+site.ID)); !errors.Is(err, client.ErrOutcomeUnknown) || wctx.Err() != nil {
					break
				}
			}
			cancel()
			if err != nil {
				t.Fatalf("shard %d unavailable after losing site %s: %v", id, site.ID, err)
			}
		}
		sc.Close()
		c.Net.Heal()
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}

// A dead meta-group voter is replaced by another member, so the catalogue
// survives losing, one after another, more voters than a quorum.
func TestMetaGroupReplacesDeadVoters(t *testing.T) {
	specs := append(threeEEANodes(), testcluster.NodeSpec{ID: "no-2", Locality: "country=NO,region=no-oslo,zone=a"},
		testcluster.NodeSpec{ID: "ie-3", Locality: "country=IE,region=ie-cork,zone=a"})
	c := testcluster.Start(t, specs, fastHealing)
	ctx := ctxT(t)
	cl := c.Client(t)
	if _, err := cl.CreateKeyspace(ctx, "a", 1, eea); err != nil {
		t.Fatal(err)
	}
	// Stop two meta voters one after the other, each replaced before the next.
	for _, victim := range []string{"ie-1", "ie-2"} {
		c.StopNode(victim)
		cl = c.Client(t)
		c.WaitFor(30*time.Second, "3 live meta voters without "+victim, func() bool {
			st, err := cl.ClusterStatus(ctx)
			if err != nil {
				return false
			}
			voters := 0
			for _, m := range st.MetaMembers {
				if m.Voter {
					if m.Node == victim {
						return false
					}
					voters++
				}
			}
			return voters == 3
		})
		c.WaitFor(30*time.Second, "the catalogue writable after losing "+victim, func() bool {
			wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			_, err := cl.CreateKeyspace(wctx, "after-"+victim, 1, client.Policy{Replicas: 1, Class: "public"})
			return err == nil || errors.Is(err, client.ErrKeyspaceExists)
		})
	}
}
