package e2e

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestCrashCycles SIGKILLs nodes at random points while writers run, over
// and over: each cycle kills one node (or, one time in four, every node at
// once), restarts it on the same data, and waits until writes reach every
// shard again. At the end every acknowledged write must read back with its
// value. The cycle count comes from CLOVER_CRASH_CYCLES (make chaos runs 50);
// without it the test is skipped. CLOVER_CHAOS_SEED replays the choices.
func TestCrashCycles(t *testing.T) {
	cycles, _ := strconv.Atoi(os.Getenv("CLOVER_CRASH_CYCLES"))
	if cycles <= 0 {
		t.Skip("set CLOVER_CRASH_CYCLES to run the kill -9 durability cycles (make chaos)")
	}
	seed := chaosSeed(t)
	t.Logf("crash cycles: %d, seed %d (replay with CLOVER_CHAOS_SEED=%d)", cycles, seed, seed)
	rng := mrand.New(mrand.NewPCG(seed, seed^0xc4a54))

	c := startCluster(t, demoNodes()[:3])
	ctx := context.Background()
	cl := c.client(t)
	if _, err := cl.CreateKeyspace(ctx, "users", usersShards, eea); err != nil {
		t.Fatalf("create users: %v", err)
	}
	c.waitKeyspaceKnown(t, "users", c.ids()...)

	l := newLedger(usersShards)
	run := randomHex(t)
	wctx, stopWriters := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() { write(wctx, cl, l, w, run) })
	}
	defer func() { stopWriters(); wg.Wait() }()
	c.waitProgress(t, l, "writes to every shard", make([]int, usersShards))

	all := 0
	for i := 1; i <= cycles; i++ {
		// The kill lands at a random point of the write stream: after
		// 0-199 more acknowledged writes.
		l.waitAcked(t, l.total()+rng.IntN(200))
		k := rng.IntN(len(c.nodes))
		victims := c.nodes[k : k+1]
		what := victims[0].spec.ID
		if rng.IntN(4) == 0 {
			victims, what = c.nodes, "every node"
			all++
		}
		for _, n := range victims {
			n.crash()
		}
		for _, n := range victims {
			n.start()
		}
		c.waitLive(t, c.ids()...)
		c.waitProgress(t, l, fmt.Sprintf("writes to every shard after cycle %d (killed %s)", i, what), l.counts())
	}
	stopWriters()
	wg.Wait()
	t.Logf("crash cycles: %d done (%d killed every node), %d writes acknowledged, %d of unknown outcome, %d failed otherwise",
		cycles, all, len(l.acked), l.unknown, l.failed)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	checkAllReadable(rctx, t, c.client(t), l.acked)
}
