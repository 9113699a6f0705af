package server_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/clover-kv/clover/internal/testcluster"
	"github.com/clover-kv/clover/server"
)

// A node that closes says so: it hands its leaderships over before it
// stops (no follower has to time out and start an election), and no node,
// the closing one included, logs an ERROR line for it. Its peers still try
// to reach it and log those failures, below WARN.
func TestCloseHandsOverAndLogsNoErrors(t *testing.T) {
	logs := testcluster.NewLogs()
	// Raft's default timeouts: a follower that times out then waited a
	// second without a leader, which a loaded machine does not explain.
	slowTimeouts := func(cfg *server.Config) { cfg.Raft = server.DefaultRaftConfig() }
	c := testcluster.Start(t, threeEEANodes(), slowTimeouts, testcluster.CaptureLogs(logs))
	ctx := ctxT(t)
	cl := c.Client(t)
	if _, err := cl.CreateKeyspace(ctx, "users", 8, eea); err != nil {
		t.Fatal(err)
	}
	var leaving string
	led := 0
	c.WaitFor(20*time.Second, "a leader for every shard", func() bool {
		k, err := cl.Keyspace(ctx, "users")
		if err != nil {
			return false
		}
		count := map[string]int{}
		for _, sh := range k.Shards {
			if sh.Leader == "" {
				return false
			}
			count[sh.Leader]++
		}
		leaving, led = k.Shards[0].Leader, count[k.Shards[0].Leader]
		return true
	})
	raftAddr := c.Node(leaving).Server.RaftAddr()
	t.Logf("closing %s, leader of %d of 8 shards", leaving, led)

	mark := logs.Mark()
	c.StopNode(leaving)
	c.WaitFor(20*time.Second, "every shard led by a node other than "+leaving, func() bool {
		k, err := cl.Keyspace(ctx, "users")
		if err != nil {
			return false
		}
		for _, sh := range k.Shards {
			if sh.Leader == "" || sh.Leader == leaving {
				return false
			}
		}
		return true
	})
	// The peers' leaders keep trying the node that left: wait for such a
	// failure to be logged, then look at everything logged since the close.
	unreachable := func(r testcluster.LogRecord) bool {
		return r.Node != leaving && (r.Msg == "failed to heartbeat to" || r.Msg == "failed to appendEntries to") &&
			strings.Contains(r.Attrs["peer"], raftAddr)
	}
	if r, ok := logs.Wait(mark, 20*time.Second, unreachable); !ok {
		t.Errorf("no peer logged a failure to reach %s below WARN: %v", leaving, logs.Since(mark, unreachable))
	} else if r.Level >= slog.LevelWarn {
		t.Errorf("a peer logged the failure to reach %s, which left, at %s: %s", leaving, r.Level, r)
	}
	for _, r := range logs.Since(mark, testcluster.AtLeast(slog.LevelError)) {
		t.Errorf("ERROR logged while %s closed: %s", leaving, r)
	}
	elections := logs.Since(mark, func(r testcluster.LogRecord) bool {
		return r.Node != leaving && r.Msg == "heartbeat timeout reached, starting election" && r.Attrs["last-leader-id"] == leaving
	})
	for _, r := range elections {
		t.Errorf("a follower timed out instead of receiving the leadership: %s", r)
	}
}
