package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/internal/testcluster"
)

// The demo's policy change (videos, held partly in the US, brought home to
// the EEA) moves each leadership at most once: the leaders leaving us-1 move
// once, and balancing the leaderships afterwards neither ping-pongs a shard
// between nodes nor touches users, whose policy did not change, more than
// once per shard.
func TestPolicyChangeMovesEachLeaderAtMostOnce(t *testing.T) {
	c := testcluster.Start(t, testcluster.DemoNodes())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl := c.Client(t)
	if _, err := cl.CreateKeyspace(ctx, "users", 8, eea); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateKeyspace(ctx, "videos", 4, client.Policy{Replicas: 3, Class: "public"}); err != nil {
		t.Fatal(err)
	}
	settled(ctx, t, c, cl, "users", "videos")
	created := transfersByShard(ctx, t, cl)
	t.Logf("leadership transfers after creating the keyspaces: %v", created)
	for sh, n := range created {
		if n > 1 {
			t.Errorf("creating the keyspaces moved the leadership of shard %s %d times, want at most once", sh, n)
		}
	}

	if _, err := cl.SetPolicy(ctx, "videos", client.Policy{AllowJurisdictions: []string{"EEA"}}); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(2*time.Minute, "every videos shard on 3 EEA replicas", func() bool {
		return shardsConform(ctx, cl, "videos", 3, "us-1")
	})
	settled(ctx, t, c, cl, "users", "videos")
	after := transfersByShard(ctx, t, cl)
	total := 0
	for sh, n := range after {
		n -= created[sh]
		total += n
		if n > 1 {
			t.Errorf("the policy change moved the leadership of shard %s %d times, want at most once", sh, n)
		}
	}
	t.Logf("leadership transfers after the policy change: %d (per shard, cumulative: %v)", total, after)
}

// settled waits until every shard of the keyspaces conforms (nothing planned,
// no transfer either) in controller rounds spanning several reconcile
// intervals, so a momentary lull between two rounds of thrash does not pass.
func settled(ctx context.Context, t *testing.T, c *testcluster.Cluster, cl *client.Client, kss ...string) {
	t.Helper()
	var since time.Time
	c.WaitFor(2*time.Minute, fmt.Sprintf("every shard of %v conforming over several controller rounds", kss), func() bool {
		rep, err := cl.VerifyPlacement(ctx)
		if err != nil || !rep.OK {
			since = time.Time{}
			return false
		}
		for _, ks := range kss {
			st, err := cl.KeyspaceStatus(ctx, ks)
			if err != nil || st.Conforming != len(st.Shards) {
				since = time.Time{}
				return false
			}
		}
		if since.IsZero() {
			since = rep.Checked
		}
		// Three reconcile intervals (1 s by default) of rounds that all
		// found nothing to do.
		return rep.Checked.Sub(since) >= 3*time.Second
	})
}

// transfersByShard counts the transfer-leader events of the placement
// history by keyspace and shard.
func transfersByShard(ctx context.Context, t *testing.T, cl *client.Client) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, ks := range []string{"users", "videos"} {
		hist, err := cl.PlacementHistory(ctx, ks, 10000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range hist {
			if e.Action == "transfer-leader" {
				out[fmt.Sprintf("%s/%d", ks, e.ShardID)]++
			}
		}
	}
	return out
}
