package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/internal/testcluster"
	"github.com/clover-kv/clover/raftfsm"
)

// A follower that was down while the leader compacted its log past the
// follower's last entry catches up by installing a snapshot, then goes on
// appending. Its store must still pass the check every start runs: it
// restarts, keeps its data, and serves.
func TestFollowerRestartsAfterInstallingSnapshot(t *testing.T) {
	c := testcluster.Start(t, testcluster.DemoNodes()[:3], snapshotOften)
	ctx := ctxT(t)
	cl := c.Client(t)
	ks, err := cl.CreateKeyspace(ctx, "users", 1, eea)
	if err != nil {
		t.Fatal(err)
	}
	shard := ks.Shards[0].ID
	putKeys(ctx, t, cl, "users", 50, 64)
	waitIdentical(ctx, t, c, cl, 50)

	victim := c.Node("no-1")
	c.StopNode("no-1")
	var before raftfsm.ShardCheck
	withStore(t, victim, func(db *pebble.DB) {
		if before, err = raftfsm.VerifyShard(db, shard); err != nil {
			t.Fatal(err)
		}
	})
	if before.LogRecords == 0 {
		t.Fatal("no-1 holds no log entries of the shard")
	}

	// Far more writes than the leader keeps as trailing log: no-1 can only
	// catch up from a snapshot. Then more writes, appended after it.
	for i := range 300 {
		if _, err := cl.Put(ctx, "users", []byte(fmt.Sprintf("more/%04d", i)), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	c.StartNode("no-1")
	c.WaitReady("no-1")
	waitIdentical(ctx, t, c, cl, 350)
	for i := range 20 {
		if _, err := cl.Put(ctx, "users", []byte(fmt.Sprintf("after/%04d", i)), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	waitIdentical(ctx, t, c, cl, 370)

	c.StopNode("no-1")
	withStore(t, victim, func(db *pebble.DB) {
		after, err := raftfsm.VerifyShard(db, shard)
		if err != nil {
			t.Fatalf("no-1's store after the snapshot install: %v", err)
		}
		// The install dropped the old log rather than keeping its tail
		// below a hole.
		if after.FirstLog <= before.LastLog+1 {
			t.Fatalf("log after the install starts at %d; before, it ended at %d", after.FirstLog, before.LastLog)
		}
	})
	c.StartNode("no-1")
	c.WaitReady("no-1")
	dc := c.DirectClient(t, "no-1")
	c.WaitFor(30*time.Second, "a follower read on no-1 after its restart", func() bool {
		_, err := dc.Get(ctx, "users", []byte("after/0019"), client.Follower(time.Second))
		return err == nil
	})
}
