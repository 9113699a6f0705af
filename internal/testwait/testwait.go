// Package testwait waits in tests for a condition the test can only poll
// (a counter another goroutine bumps, a state a cluster reaches), with a
// deadline, so that no test waits for an event by sleeping:
//
//	testwait.For(t, 5*time.Second, "b to accept the conn", func() bool {
//		return accepts.Load() == 1
//	})
//
// A condition that has a channel or a notification of its own should be
// waited on through that instead.
package testwait

import (
	"testing"
	"time"
)

// Interval is how often For polls its condition.
const Interval = 10 * time.Millisecond

// For calls cond at once and then every Interval until it returns true,
// and fails the test (t.Fatalf, naming what) if it has not within timeout.
// It must be called from the test's goroutine.
func For(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Until(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// Until is For without a test: it reports whether cond held within
// timeout.
func Until(timeout time.Duration, cond func() bool) bool {
	if cond() {
		return true
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if cond() {
				return true
			}
		case <-deadline.C:
			return cond()
		}
	}
}
