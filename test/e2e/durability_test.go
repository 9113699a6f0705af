package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/internal/keys"
)

var eea = client.Policy{AllowJurisdictions: []string{"EEA"}, Replicas: 3, Class: "personal"}

const (
	usersShards = 4
	writers     = 4
	// progressStep is how many acknowledged writes every shard must gain
	// to count as making progress.
	progressStep = 10
)

// ledger records the writes the cluster acknowledged.
type ledger struct {
	mu       sync.Mutex
	acked    map[string]string // key -> value
	perShard []int             // acknowledged writes per shard index
	failed   int               // failures other than an unknown outcome
	firstErr error
	unknown  int           // puts caught in flight by a crash: outcome unknown
	acks     chan struct{} // closed and replaced on every acknowledged write
}

func newLedger(shards int) *ledger {
	return &ledger{acked: map[string]string{}, perShard: make([]int, shards), acks: make(chan struct{})}
}

func (l *ledger) ack(key, value string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acked[key] = value
	l.perShard[keys.ShardIndex(keys.Hash([]byte(key)), len(l.perShard))]++
	close(l.acks)
	l.acks = make(chan struct{})
}

// total is the number of writes acknowledged so far.
func (l *ledger) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// waitAcked waits until n writes in all are acknowledged, failing the test
// after readyTimeout.
func (l *ledger) waitAcked(t *testing.T, n int) {
	t.Helper()
	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	for {
		l.mu.Lock()
		have, acks := len(l.acked), l.acks
		l.mu.Unlock()
		if have >= n {
			return
		}
		select {
		case <-acks:
		case <-timer.C:
			t.Fatalf("timed out after %v waiting for %d acknowledged writes (%d so far)", readyTimeout, n, have)
		}
	}
}

func (l *ledger) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if errors.Is(err, client.ErrOutcomeUnknown) {
		l.unknown++
		return
	}
	l.failed++
	if l.firstErr == nil {
		l.firstErr = err
	}
}

func (l *ledger) counts() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.perShard)
}

// waitProgress waits until every shard has at least progressStep more
// acknowledged writes than in base.
func (c *cluster) waitProgress(t *testing.T, l *ledger, what string, base []int) {
	t.Helper()
	c.waitFor(t, readyTimeout, what, func(context.Context, *client.Client) (bool, string) {
		now := l.counts()
		for i := range now {
			if now[i] < base[i]+progressStep {
				return false, fmt.Sprintf("acknowledged writes per shard %v, started from %v", now, base)
			}
		}
		return true, ""
	})
}

// write puts unique keys until ctx ends, recording acknowledged ones. A put
// cut short by the end of ctx is neither acknowledged nor a failure.
func write(ctx context.Context, cl *client.Client, l *ledger, w int, run string) {
	for i := 0; ctx.Err() == nil; i++ {
		key := fmt.Sprintf("user/w%d/%06d", w, i)
		value := fmt.Sprintf("v-%s-%d-%d", run, w, i)
		pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err := cl.Put(pctx, "users", []byte(key), []byte(value))
		cancel()
		switch {
		case err == nil:
			l.ack(key, value)
		case ctx.Err() != nil:
			return
		default:
			l.fail(err)
		}
	}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// Writes acknowledged while a shard leader is SIGKILLed and restarted, and
// then while every node is SIGKILLed and restarted, are all readable
// afterwards; users never reaches the US node, in its replicas or its files.
func TestAcknowledgedWritesSurviveLeaderKillAndFullRestart(t *testing.T) {
	c := startCluster(t, demoNodes())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := c.client(t)

	users, err := cl.CreateKeyspace(ctx, "users", usersShards, eea)
	if err != nil {
		t.Fatalf("create users: %v", err)
	}
	for _, sh := range users.Shards {
		if len(sh.Replicas) != 3 || slices.Contains(sh.Replicas, "us-1") {
			t.Fatalf("shard %d of users placed on %v: want 3 EEA nodes", sh.ID, sh.Replicas)
		}
	}
	c.waitKeyspaceKnown(t, "users", c.ids()...)

	l := newLedger(usersShards)
	run := randomHex(t)
	wctx, stopWriters := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() { defer wg.Done(); write(wctx, cl, l, w, run) }()
	}
	defer func() { stopWriters(); wg.Wait() }()
	c.waitProgress(t, l, "writes to every shard", make([]int, usersShards))

	// SIGKILL the leader of shard 0; writes to every shard, shard 0
	// included, must go on after a new leader is elected.
	ks := c.waitLeaders(t, "users")
	victim := ks.Shards[0].Leader
	t.Logf("killing %s, leader of shard %d", victim, ks.Shards[0].ID)
	c.node(victim).crash()
	afterKill := c.waitLeaders(t, "users", victim)
	t.Logf("shard %d re-elected %s", afterKill.Shards[0].ID, afterKill.Shards[0].Leader)
	c.waitProgress(t, l, "writes to every shard after "+victim+" was killed", l.counts())

	c.node(victim).start()
	c.waitLive(t, c.ids()...)
	c.waitProgress(t, l, "writes to every shard after "+victim+" restarted", l.counts())
	stopWriters()
	wg.Wait()
	if l.failed > 0 {
		t.Errorf("%d puts failed after the client's retries; first: %v", l.failed, l.firstErr)
	}
	// Only puts in flight on the killed node can end with an unknown
	// outcome (the client does not send a write twice).
	if l.unknown > writers {
		t.Errorf("%d puts ended with an unknown outcome; at most %d were in flight on the killed node", l.unknown, writers)
	}
	t.Logf("%d writes acknowledged, per shard %v; %d of unknown outcome", len(l.acked), l.counts(), l.unknown)

	// SIGKILL every node at once, then restart them all.
	for _, n := range c.nodes {
		n.crash()
	}
	for _, n := range c.nodes {
		n.start()
	}
	c.waitLive(t, c.ids()...)
	c.waitLeaders(t, "users")

	rcl := c.client(t)
	checkAllReadable(ctx, t, rcl, l.acked)
	checkUSHoldsNoUsers(ctx, t, c, rcl)
}

// checkAllReadable reads every acknowledged key back, linearizably.
func checkAllReadable(ctx context.Context, t *testing.T, cl *client.Client, acked map[string]string) {
	t.Helper()
	work := make(chan string)
	var mu sync.Mutex
	var missing, wrong, failed int
	var firstErr error
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range work {
				kv, err := cl.Get(ctx, "users", []byte(key))
				mu.Lock()
				switch {
				case errors.Is(err, client.ErrNotFound):
					missing++
				case err != nil:
					failed++
					firstErr = firstOf(firstErr, err)
				case string(kv.Value) != acked[key]:
					wrong++
				}
				mu.Unlock()
			}
		}()
	}
	for key := range acked {
		work <- key
	}
	close(work)
	wg.Wait()
	if missing+wrong+failed > 0 {
		t.Fatalf("of %d acknowledged writes: %d missing, %d with another value, %d unreadable (first error: %v)",
			len(acked), missing, wrong, failed, firstErr)
	}
}

func firstOf(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// checkUSHoldsNoUsers checks that the US node reports no users replica and
// that a canary written to users reaches the disks of the shard's replicas
// but no file of the US node.
func checkUSHoldsNoUsers(ctx context.Context, t *testing.T, c *cluster, cl *client.Client) {
	t.Helper()
	st, err := cl.ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, n := range st.Nodes {
		if !n.Reachable {
			t.Fatalf("node %s did not report its replicas: %s", n.ID, n.Error)
		}
		for _, r := range n.Replicas {
			if r.Keyspace != "users" {
				continue
			}
			if n.ID == "us-1" {
				t.Fatalf("us-1 holds users shard %d", r.ShardID)
			}
			held++
		}
	}
	if held != usersShards*3 {
		t.Fatalf("EEA nodes hold %d users replicas, want %d", held, usersShards*3)
	}

	canary := "canary-" + randomHex(t)
	key := []byte("user/" + canary)
	if _, err := cl.Put(ctx, "users", key, []byte(canary)); err != nil {
		t.Fatalf("put canary: %v", err)
	}
	ks, err := cl.Keyspace(ctx, "users")
	if err != nil {
		t.Fatal(err)
	}
	replicas := ks.Shards[keys.ShardIndex(keys.Hash(key), len(ks.Shards))].Replicas
	c.waitFor(t, readyTimeout, "the canary on the disk of every replica", func(context.Context, *client.Client) (bool, string) {
		var without []string
		for _, id := range replicas {
			if len(filesContaining(t, c.node(id).dataDir, []byte(canary))) == 0 {
				without = append(without, id)
			}
		}
		return len(without) == 0, fmt.Sprintf("no file holds the canary on %v", without)
	})
	// Stop the US node cleanly so whatever it buffers is on disk, then read
	// every file it has.
	us := c.node("us-1")
	us.stop()
	if hits := filesContaining(t, us.dataDir, []byte(canary)); len(hits) > 0 {
		t.Fatalf("canary of users found on the US node in %v", hits)
	}
}
