package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// A node stopped with SIGTERM leaves in order: it hands its leaderships
// over, and no node logs an ERROR line for it, while its peers still log
// (at DEBUG) that they cannot reach it. The same node restarted and then
// killed with SIGKILL has announced nothing: its peers log their failures
// to reach it as ERRORs, as for any fault.
func TestStopIsQuietAndCrashIsNot(t *testing.T) {
	needBinaries(t)
	c := newCluster(t, demoNodes()[:3])
	for _, n := range c.nodes {
		n.extra = []string{"--log-level=debug"} // the lowered lines are DEBUG
	}
	for _, n := range c.nodes {
		n.start()
	}
	c.waitLive(t, c.ids()...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.client(t).CreateKeyspace(ctx, "users", usersShards, eea); err != nil {
		t.Fatalf("create users: %v", err)
	}
	c.waitLeaders(t, "users")
	victim := c.node("no-1")
	failedToReach := func(level string) func(id, line string) bool {
		return func(id, line string) bool {
			return id != victim.spec.ID && strings.Contains(line, "level="+level) && strings.Contains(line, victim.raft) &&
				(strings.Contains(line, `msg="failed to heartbeat to"`) || strings.Contains(line, `msg="failed to appendEntries to"`))
		}
	}

	mark := c.logMark(t)
	victim.stop()
	c.waitLeaders(t, "users", victim.spec.ID)
	c.waitLogLine(t, mark, "a peer logging at DEBUG that it cannot reach "+victim.spec.ID, failedToReach("DEBUG"))
	for _, n := range c.nodes {
		for _, line := range c.logSince(t, mark, n) {
			if strings.Contains(line, "level=ERROR") {
				t.Errorf("%s logged an ERROR while %s stopped: %s", n.spec.ID, victim.spec.ID, line)
			}
		}
	}

	victim.start()
	c.waitLive(t, c.ids()...)
	mark = c.logMark(t)
	victim.crash()
	c.waitLogLine(t, mark, "a peer logging at ERROR that it cannot reach the killed "+victim.spec.ID, failedToReach("ERROR"))
}

// logMark is where each node's log ends now.
func (c *cluster) logMark(t *testing.T) map[string]int64 {
	t.Helper()
	m := map[string]int64{}
	for _, n := range c.nodes {
		st, err := os.Stat(n.logPath)
		if err != nil {
			t.Fatal(err)
		}
		m[n.spec.ID] = st.Size()
	}
	return m
}

// logSince returns the lines of a node's log written after mark.
func (c *cluster) logSince(t *testing.T, mark map[string]int64, n *node) []string {
	t.Helper()
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(b[min(mark[n.spec.ID], int64(len(b))):]), "\n")
}

// waitLogLine waits until a line written to some node's log after mark
// matches.
func (c *cluster) waitLogLine(t *testing.T, mark map[string]int64, what string, match func(id, line string) bool) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, n := range c.nodes {
			for _, line := range c.logSince(t, mark, n) {
				if match(n.spec.ID, line) {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", readyTimeout, what)
		}
		<-tick.C
	}
}
