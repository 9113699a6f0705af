package faultnet

import (
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// conn is a dialed connection from node local to node remote. Write carries
// the local -> remote direction and Read the remote -> local one; both look
// up the faults of their direction on every call.
type conn struct {
	net.Conn
	n             *Network
	local, remote string

	closed    chan struct{}
	closeOnce sync.Once
	closeErr  error

	// outTainted and inTainted record that bytes of that direction were
	// dropped: the stream has a hole and never delivers again.
	outTainted, inTainted atomic.Bool
	// writeDeadline is the write deadline in Unix nanoseconds, 0 for none.
	writeDeadline atomic.Int64
}

func (c *conn) Write(p []byte) (int, error) {
	f := c.n.faultsOf(c.local, c.remote)
	if f.cut {
		_ = c.Close()
		return 0, c.opError("write", fmt.Errorf("%w: %s -> %s", ErrPartitioned, c.local, c.remote))
	}
	if f.drop || c.outTainted.Load() {
		c.outTainted.Store(true)
		return len(p), nil
	}
	if f.delay > 0 {
		if err := c.hold(f.delay, c.writeDeadlineTime()); err != nil {
			return 0, c.opError("write", err)
		}
	}
	k, err := c.Conn.Write(p)
	c.n.count(c.local, c.remote, k)
	return k, err
}

func (c *conn) Read(p []byte) (int, error) {
	for {
		k, err := c.Conn.Read(p)
		if k == 0 {
			return 0, err
		}
		f := c.n.faultsOf(c.remote, c.local)
		if f.cut {
			_ = c.Close()
			return 0, c.opError("read", fmt.Errorf("%w: %s -> %s", ErrPartitioned, c.remote, c.local))
		}
		if f.drop || c.inTainted.Load() {
			c.inTainted.Store(true)
			if err != nil {
				return 0, err
			}
			continue
		}
		if f.delay > 0 {
			if herr := c.hold(f.delay, time.Time{}); herr != nil {
				return 0, c.opError("read", herr)
			}
		}
		c.n.count(c.remote, c.local, k)
		return k, err
	}
}

// hold waits d, or until the deadline (os.ErrDeadlineExceeded) or Close
// (net.ErrClosed), whichever comes first.
func (c *conn) hold(d time.Duration, deadline time.Time) error {
	t := time.NewTimer(d)
	defer t.Stop()
	var expired <-chan time.Time
	if !deadline.IsZero() {
		left := time.Until(deadline)
		if left <= 0 {
			return os.ErrDeadlineExceeded
		}
		if left < d {
			dt := time.NewTimer(left)
			defer dt.Stop()
			expired = dt.C
		}
	}
	select {
	case <-t.C:
		return nil
	case <-expired:
		return os.ErrDeadlineExceeded
	case <-c.closed:
		return net.ErrClosed
	}
}

func (c *conn) SetDeadline(t time.Time) error {
	c.storeWriteDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *conn) SetWriteDeadline(t time.Time) error {
	c.storeWriteDeadline(t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *conn) storeWriteDeadline(t time.Time) {
	if t.IsZero() {
		c.writeDeadline.Store(0)
		return
	}
	c.writeDeadline.Store(t.UnixNano())
}

func (c *conn) writeDeadlineTime() time.Time {
	ns := c.writeDeadline.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Close closes the connection and wakes any Read or Write held by a delay.
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.n.untrackDialed(c)
		c.closeErr = c.Conn.Close()
	})
	return c.closeErr
}

func (c *conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
