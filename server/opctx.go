package server

import (
	"context"
	"sync"
	"time"
)

// opContext is the context of one stream request: its parent's values and
// cancellation plus the request's own deadline, with the deadline's timer
// started only when something waits on Done.
//
// Most stream requests never wait (a follower read of an applied index, a
// read the leader's confirmed read index already covers): for them
// context.WithTimeout's timer and its registration with the stream's
// context, contended by every request of the stream, were about 8% of a
// node's CPU under read load. Deadline and Err answer without the timer, so
// a request that never blocks still sees its deadline.
type opContext struct {
	parent   context.Context
	deadline time.Time

	mu       sync.Mutex
	ctx      context.Context // once started: context.WithDeadline(parent, deadline)
	cancel   context.CancelFunc
	released bool
}

var _ context.Context = (*opContext)(nil)

// closedCh is Done of a released opContext.
var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// newOpContext returns parent bounded by timeout; call release when the
// request is done.
func newOpContext(parent context.Context, timeout time.Duration) *opContext {
	dl := time.Now().Add(timeout)
	if pd, ok := parent.Deadline(); ok && pd.Before(dl) {
		dl = pd
	}
	return &opContext{parent: parent, deadline: dl}
}

// startLocked starts the deadline's timer; c.mu is held.
func (c *opContext) startLocked() {
	if c.ctx == nil {
		c.ctx, c.cancel = context.WithDeadline(c.parent, c.deadline)
	}
}

func (c *opContext) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *opContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released {
		return closedCh
	}
	c.startLocked()
	return c.ctx.Done()
}

// Err agrees with Done: before the timer starts, a passed deadline or a
// done parent starts it (WithDeadline then returns a context already done)
// so that Err is never non-nil while Done would still block.
func (c *opContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released {
		return context.Canceled
	}
	if c.ctx == nil {
		if c.parent.Err() == nil && time.Now().Before(c.deadline) {
			return nil
		}
		c.startLocked()
	}
	return c.ctx.Err()
}

func (c *opContext) Value(key any) any { return c.parent.Value(key) }

// release ends the context (Done closed, Err Canceled) and stops the
// deadline's timer if it was started.
func (c *opContext) release() {
	c.mu.Lock()
	c.released = true
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}
