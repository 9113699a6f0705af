package server_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/internal/keys"
	"github.com/clover-kv/clover/internal/testcluster"
	"github.com/clover-kv/clover/server"
)

func threeEEANodes() []testcluster.NodeSpec {
	return []testcluster.NodeSpec{
		{ID: "ie-1", Locality: "country=IE,region=ie-dublin,zone=a"},
		{ID: "ie-2", Locality: "country=IE,region=ie-dublin,zone=b"},
		{ID: "no-1", Locality: "country=NO,region=no-hamar,zone=a"},
	}
}

// The KV API's semantics as users rely on them: versions, compare-and-swap,
// atomic batches, deletes, ordered paginated scans across shards, limits.
func TestKVSemantics(t *testing.T) {
	c := testcluster.Start(t, threeEEANodes())
	ctx := ctxT(t)
	cl := c.Client(t)
	if _, err := cl.CreateKeyspace(ctx, "users", 4, eea); err != nil {
		t.Fatal(err)
	}

	t.Run("versions and CAS", func(t *testing.T) {
		v1, err := cl.Put(ctx, "users", []byte("k1"), []byte("a"))
		if err != nil || v1 == 0 {
			t.Fatalf("put: %d %v", v1, err)
		}
		kv, err := cl.Get(ctx, "users", []byte("k1"))
		if err != nil || string(kv.Value) != "a" || kv.Version != v1 {
			t.Fatalf("get: %+v %v, want version %d", kv, err, v1)
		}
		v2, err := cl.CompareAndSwap(ctx, "users", []byte("k1"), v1, []byte("b"))
		if err != nil || v2 <= v1 {
			t.Fatalf("cas: %d %v", v2, err)
		}
		_, err = cl.CompareAndSwap(ctx, "users", []byte("k1"), v1, []byte("c"))
		var ce *client.Error
		if !errors.Is(err, client.ErrVersionMismatch) || !errors.As(err, &ce) || ce.CurrentVersion != v2 {
			t.Fatalf("stale cas: %v (current %v), want mismatch at %d", err, ce, v2)
		}
		if _, err := cl.CompareAndSwap(ctx, "users", []byte("k-new"), 0, []byte("x")); err != nil {
			t.Fatalf("create-if-absent: %v", err)
		}
		if _, err := cl.CompareAndSwap(ctx, "users", []byte("k-new"), 0, []byte("y")); !errors.Is(err, client.ErrVersionMismatch) {
			t.Fatalf("second create-if-absent: %v", err)
		}
		if _, err := cl.CompareAndDelete(ctx, "users", []byte("k1"), v1); !errors.Is(err, client.ErrVersionMismatch) {
			t.Fatalf("stale compare-and-delete: %v", err)
		}
		if _, err := cl.CompareAndDelete(ctx, "users", []byte("k1"), v2); err != nil {
			t.Fatalf("compare-and-delete: %v", err)
		}
		if _, err := cl.Get(ctx, "users", []byte("k1")); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
		if _, err := cl.Delete(ctx, "users", []byte("never-written")); err != nil {
			t.Fatalf("delete of a missing key: %v", err)
		}
	})

	t.Run("atomic batch", func(t *testing.T) {
		// Find three keys in one shard.
		var ks [][]byte
		for i := 0; len(ks) < 3; i++ {
			k := []byte(fmt.Sprintf("batch/%d", i))
			if keys.ShardIndex(keys.Hash(k), 4) == 0 {
				ks = append(ks, k)
			}
		}
		v, err := cl.Batch(ctx, "users", client.PutOp(ks[0], []byte("0")), client.PutOp(ks[1], []byte("1")))
		if err != nil {
			t.Fatalf("batch: %v", err)
		}
		for _, k := range ks[:2] {
			kv, err := cl.Get(ctx, "users", k)
			if err != nil || kv.Version != v {
				t.Fatalf("batch key: %+v %v, want version %d", kv, err, v)
			}
		}
		// One failing condition writes nothing.
		_, err = cl.Batch(ctx, "users", client.PutOp(ks[2], []byte("2")), client.DeleteOp(ks[0]).IfVersion(v+1000))
		if !errors.Is(err, client.ErrVersionMismatch) {
			t.Fatalf("conditional batch: %v", err)
		}
		if _, err := cl.Get(ctx, "users", ks[2]); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("failed batch wrote: %v", err)
		}
		if _, err := cl.Get(ctx, "users", ks[0]); err != nil {
			t.Fatalf("failed batch deleted: %v", err)
		}
		// Keys of different shards cannot share a batch.
		var other []byte
		for i := 0; other == nil; i++ {
			k := []byte(fmt.Sprintf("other/%d", i))
			if keys.ShardIndex(keys.Hash(k), 4) != 0 {
				other = k
			}
		}
		if _, err := cl.Batch(ctx, "users", client.PutOp(ks[0], nil), client.PutOp(other, nil)); !errors.Is(err, client.ErrInvalidArgument) {
			t.Fatalf("cross-shard batch: %v", err)
		}
	})

	t.Run("scan across shards in order with pages", func(t *testing.T) {
		var want []string
		for i := 0; i < 57; i++ {
			k := fmt.Sprintf("scan/%03d", i)
			want = append(want, k)
			if _, err := cl.Put(ctx, "users", []byte(k), []byte("v"+k)); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		var token []byte
		pages := 0
		for {
			page, next, err := cl.Scan(ctx, "users", client.WithPrefix([]byte("scan/")), client.WithLimit(10), client.WithPageToken(token))
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, kv := range page {
				if string(kv.Value) != "v"+string(kv.Key) {
					t.Fatalf("scan value of %s: %q", kv.Key, kv.Value)
				}
				got = append(got, string(kv.Key))
			}
			if next == nil {
				break
			}
			token = next
		}
		if !slices.Equal(got, want) || pages != 6 {
			t.Fatalf("scan: %d pages, keys %v", pages, got)
		}
		var all []string
		for kv, err := range cl.ScanAll(ctx, "users", client.WithRange([]byte("scan/010"), []byte("scan/020")), client.KeysOnly()) {
			if err != nil {
				t.Fatal(err)
			}
			if kv.Value != nil {
				t.Fatalf("keys-only scan returned a value")
			}
			all = append(all, string(kv.Key))
		}
		if !slices.Equal(all, want[10:20]) {
			t.Fatalf("range scan: %v", all)
		}
	})

	t.Run("limits", func(t *testing.T) {
		direct := c.DirectClient(t, "ie-1")
		for name, f := range map[string]func() error{
			"key": func() error {
				_, err := direct.Put(ctx, "users", bytes.Repeat([]byte("k"), keys.MaxKeyBytes+1), nil)
				return err
			},
			"value": func() error {
				_, err := direct.Put(ctx, "users", []byte("k"), make([]byte, keys.MaxValueBytes+1))
				return err
			},
			"batch": func() error {
				ops := make([]client.Op, keys.MaxBatchOps+1)
				for i := range ops {
					ops[i] = client.PutOp([]byte(fmt.Sprint(i)), nil)
				}
				_, err := direct.Batch(ctx, "users", ops...)
				return err
			},
		} {
			if err := f(); !errors.Is(err, client.ErrInvalidArgument) {
				t.Errorf("oversized %s: got %v, want ErrInvalidArgument", name, err)
			}
		}
		// A value exactly at the limit is accepted and read back whole.
		big := bytes.Repeat([]byte{0xab}, keys.MaxValueBytes)
		if _, err := cl.Put(ctx, "users", []byte("big"), big); err != nil {
			t.Fatalf("1 MiB value: %v", err)
		}
		kv, err := cl.Get(ctx, "users", []byte("big"))
		if err != nil || !bytes.Equal(kv.Value, big) {
			t.Fatalf("1 MiB value read back: %v (len %d)", err, len(kv.Value))
		}
	})

	t.Run("follower read sees acknowledged write within the bound", func(t *testing.T) {
		v, err := cl.Put(ctx, "users", []byte("fr"), []byte("1"))
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"ie-1", "ie-2", "no-1"} {
			d := c.DirectClient(t, id)
			c.WaitFor(5*time.Second, "follower read at "+id, func() bool {
				kv, err := d.Get(ctx, "users", []byte("fr"), client.Follower(time.Second))
				return err == nil && kv.Version >= v
			})
		}
	})
}

// Linearizable reads never return stale data from a partitioned old leader,
// and writes go on once a new leader is elected.
func TestPartitionedLeaderServesNoStaleReads(t *testing.T) {
	c := testcluster.Start(t, threeEEANodes())
	ctx := ctxT(t)
	cl := c.Client(t)
	ks, err := cl.CreateKeyspace(ctx, "users", 1, eea)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Put(ctx, "users", []byte("x"), []byte("old")); err != nil {
		t.Fatal(err)
	}
	old := ks.Shards[0].Leader
	c.WaitFor(10*time.Second, "a leader of shard", func() bool {
		k, err := cl.Keyspace(ctx, "users")
		old = k.Shards[0].Leader
		return err == nil && old != ""
	})
	// A bounded-staleness read at the leader before the partition leaves
	// it a confirmed read index that it may reuse within the bound.
	const bound = 300 * time.Millisecond
	stale := c.DirectClient(t, old)
	if kv, err := stale.Get(ctx, "users", []byte("x"), client.Follower(bound)); err != nil || string(kv.Value) != "old" {
		t.Fatalf("follower read at the leader: %v, %v", kv, err)
	}
	c.Net.Isolate(old)
	defer c.Net.Heal()

	var others []string
	for _, n := range c.Nodes {
		if n.Spec.ID != old {
			others = append(others, n.GRPCAddr())
		}
	}
	majority, err := client.New(ctx, client.Config{Insecure: true, Endpoints: others})
	if err != nil {
		t.Fatal(err)
	}
	defer majority.Close()
	c.WaitFor(20*time.Second, "a write through the majority", func() bool {
		_, err := majority.Put(ctx, "users", []byte("x"), []byte("new"))
		return err == nil
	})
	acked := time.Now()
	// The isolated old leader must not answer a linearizable read with the
	// old value.
	kv, err := stale.Get(ctx, "users", []byte("x"))
	if err == nil && string(kv.Value) == "old" {
		t.Fatalf("isolated old leader %s served a stale linearizable read", old)
	}
	// Nor a follower read whose bound has passed since the new value was
	// acknowledged: asked with a bound shorter than the time since then,
	// the read index the old leader confirmed before the partition is too
	// old to use.
	passed := time.Since(acked)
	kv, err = stale.Get(ctx, "users", []byte("x"), client.Follower(passed))
	if err == nil && string(kv.Value) == "old" {
		t.Fatalf("isolated old leader %s served a follower read older than its bound", old)
	}
	c.Net.Heal()
	c.WaitFor(20*time.Second, "old leader catches up", func() bool {
		kv, err := stale.Get(ctx, "users", []byte("x"))
		return err == nil && string(kv.Value) == "new"
	})
}

// Acknowledged writes survive losing a shard leader and restarting every node.
func TestAcknowledgedWritesSurviveLeaderLossAndRestart(t *testing.T) {
	c := testcluster.Start(t, threeEEANodes())
	ctx := ctxT(t)
	cl := c.Client(t)
	if _, err := cl.CreateKeyspace(ctx, "users", 4, eea); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]string{}
	write := func(prefix string, n int) {
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < n; i++ {
					k := fmt.Sprintf("%s/%d/%d", prefix, w, i)
					if _, err := cl.Put(ctx, "users", []byte(k), []byte("v-"+k)); err == nil {
						mu.Lock()
						acked[k] = "v-" + k
						mu.Unlock()
					}
				}
			}(w)
		}
		wg.Wait()
	}
	write("before", 50)
	ks, err := cl.Keyspace(ctx, "users")
	if err != nil {
		t.Fatal(err)
	}
	victim := ks.Shards[0].Leader
	if victim == "" {
		victim = "ie-1"
	}
	done := make(chan struct{})
	go func() { write("during", 50); close(done) }()
	c.StopNode(victim)
	<-done
	write("after", 20)
	c.StartNode(victim)
	c.WaitReady(victim)
	for _, n := range c.Nodes {
		c.StopNode(n.Spec.ID)
	}
	for _, n := range c.Nodes {
		c.StartNode(n.Spec.ID)
	}
	for _, n := range c.Nodes {
		c.WaitReady(n.Spec.ID)
	}
	cl2 := c.Client(t)
	if len(acked) < 200 {
		t.Fatalf("only %d writes acknowledged; the cluster should have kept writing", len(acked))
	}
	for k, v := range acked {
		kv, err := cl2.Get(ctx, "users", []byte(k))
		if err != nil || string(kv.Value) != v {
			t.Fatalf("acknowledged write %s lost after restart: %v %q", k, err, kv.Value)
		}
	}
}

func shardOf(ks client.Keyspace, key []byte) uint64 {
	h := keys.Hash(key)
	for _, sh := range ks.Shards {
		if h >= sh.HashStart && h <= sh.HashEnd {
			return sh.ID
		}
	}
	return 0
}

// A follower cut off from its leader does not serve follower reads older
// than the bound: it fails (and the client goes elsewhere) instead.
func TestIsolatedFollowerServesNoStaleFollowerReads(t *testing.T) {
	c := testcluster.Start(t, threeEEANodes())
	ctx := ctxT(t)
	cl := c.Client(t)
	if _, err := cl.CreateKeyspace(ctx, "users", 1, eea); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Put(ctx, "users", []byte("x"), []byte("old")); err != nil {
		t.Fatal(err)
	}
	var follower string
	c.WaitFor(10*time.Second, "a leader", func() bool {
		k, err := cl.Keyspace(ctx, "users")
		if err != nil || k.Shards[0].Leader == "" {
			return false
		}
		for _, r := range k.Shards[0].Replicas {
			if r != k.Shards[0].Leader {
				follower = r
			}
		}
		return true
	})
	fc := c.DirectClient(t, follower)
	c.WaitFor(10*time.Second, "the follower serves the old value", func() bool {
		kv, err := fc.Get(ctx, "users", []byte("x"), client.Follower(200*time.Millisecond))
		return err == nil && string(kv.Value) == "old"
	})
	c.Net.Isolate(follower)
	defer c.Net.Heal()
	if _, err := cl.Put(ctx, "users", []byte("x"), []byte("new")); err != nil {
		t.Fatal(err)
	}
	// Within the bound the old value is a correct answer; once the write is
	// older than the bound it no longer is.
	acked := time.Now()
	c.WaitFor(5*time.Second, "the write to be older than the bound", func() bool { return time.Since(acked) > 250*time.Millisecond })
	for i := 0; i < 5; i++ {
		kv, err := fc.Get(ctx, "users", []byte("x"), client.Follower(200*time.Millisecond))
		if err == nil && string(kv.Value) == "old" {
			t.Fatalf("isolated follower %s served a value older than the staleness bound", follower)
		}
	}
}

// Followers apply a burst's last write without waiting for the commit
// timeout's empty append (the leader's tail entry tells them it committed),
// and a follower serves bounded-staleness reads of it from its own replica,
// though it never learns that the tail itself committed. The commit timeout
// here is longer than the test, so only the tail can deliver the write.
// The keyspace is not audited: a follower alone cannot commit a read's
// audit entry (TestAuditedFollowerReadFailsClosed).
func TestFollowersApplyLastWriteBeforeCommitTimeout(t *testing.T) {
	c := testcluster.Start(t, threeEEANodes(), func(cfg *server.Config) {
		cfg.Raft.CommitTimeout = 10 * time.Minute
	})
	ctx := ctxT(t)
	cl := c.Client(t)
	unaudited := eea
	unaudited.Audit = "none"
	ks, err := cl.CreateKeyspace(ctx, "users", 1, unaudited)
	if err != nil {
		t.Fatal(err)
	}
	shard := ks.Shards[0].ID
	v, err := cl.Put(ctx, "users", []byte("x"), []byte("last"))
	if err != nil {
		t.Fatal(err)
	}
	// Every replica applies the write, and the leader commits an entry after
	// it (the tail) that the followers do not hear of.
	var leader string
	c.WaitFor(20*time.Second, "every replica to apply the write and the leader to commit its tail", func() bool {
		st, err := cl.ClusterStatus(ctx)
		if err != nil {
			return false
		}
		applied, tail := 0, false
		for _, n := range st.Nodes {
			for _, r := range n.Replicas {
				if r.ShardID != shard {
					continue
				}
				if r.AppliedIndex >= v {
					applied++
				}
				if r.Leader {
					leader, tail = n.ID, r.CommitIndex > v && r.AppliedIndex == r.CommitIndex
				}
			}
		}
		return applied == 3 && tail
	})
	// The replicas hold the same data at different applied indexes (the
	// followers have not heard that the tail committed): the check calls
	// them identical rather than waiting for the next empty append.
	rep, err := cl.CheckReplicas(ctx, "users", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Shards) != 1 || rep.Shards[0].Status != "identical" {
		t.Fatalf("check after the last write: %+v", rep)
	}
	indexes := map[uint64]bool{}
	for _, d := range rep.Shards[0].Replicas {
		indexes[d.AppliedIndex] = true
	}
	if len(indexes) < 2 {
		t.Fatalf("replicas all at one applied index %v: the test no longer covers a follower behind by the tail", indexes)
	}
	var follower, other string
	for _, id := range []string{"ie-1", "ie-2", "no-1"} {
		if id == leader {
			continue
		}
		if follower == "" {
			follower = id
		} else {
			other = id
		}
	}
	fc := c.DirectClient(t, follower)
	const bound = 30 * time.Second
	kv, err := fc.Get(ctx, "users", []byte("x"), client.Follower(bound))
	if err != nil || kv.Version != v {
		t.Fatalf("follower read at %s: %+v, %v; want version %d", follower, kv, err, v)
	}
	// With the other two nodes gone the follower cannot reach a leader; the
	// read index it was given covers the write, so it serves the read itself.
	c.StopNode(leader)
	c.StopNode(other)
	kv, err = fc.Get(ctx, "users", []byte("x"), client.Follower(bound))
	if err != nil || kv.Version != v || string(kv.Value) != "last" {
		t.Fatalf("follower %s alone: %+v, %v; want its own replica to serve version %d", follower, kv, err, v)
	}
}
