package raftmux

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// streamLayer is the raft.StreamLayer of one shard. Its Accept yields the
// inbound connections routed to the shard; its Dial opens outbound ones after
// asking the shard's Guard. It tracks every connection it handed out, so
// closing it (the transport's Close, Unregister or the Mux's Close) closes
// them all.
type streamLayer struct {
	m      *Mux
	shard  uint64
	guard  Guard
	accept chan net.Conn
	done   chan struct{}
	once   sync.Once

	mu     sync.Mutex
	closed bool
	conns  map[*shardConn]struct{}
}

func newStreamLayer(m *Mux, shard uint64, g Guard) *streamLayer {
	return &streamLayer{
		m:      m,
		shard:  shard,
		guard:  g,
		accept: make(chan net.Conn),
		done:   make(chan struct{}),
		conns:  make(map[*shardConn]struct{}),
	}
}

// Accept waits for the next inbound connection of the shard. After Close it
// returns an error matching ErrClosed and net.ErrClosed.
func (l *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.accept:
		return c, nil
	case <-l.done:
		return nil, l.closedErr()
	}
}

// Close unregisters the shard (if this layer is still its registration) and
// closes the layer and its connections. It is idempotent.
func (l *streamLayer) Close() error {
	l.m.forget(l)
	l.shut()
	return nil
}

// Addr returns the Mux's address.
func (l *streamLayer) Addr() net.Addr { return l.m.Addr() }

// Dial asks the Guard first: a refusal returns an error wrapping ErrResidency
// and the Guard's error, and no connection is opened. Otherwise it connects
// to the Mux at address and runs the handshake for this shard; timeout bounds
// the TCP dial. Peer answers other than OK return ErrUnknownShard, ErrRefused
// or ErrBadHeader.
func (l *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if l.isClosed() {
		return nil, l.closedErr()
	}
	if err := l.guard.AllowDial(address); err != nil {
		l.m.log.Warn("raftmux: dial refused by guard", "shard", l.shard, "target", string(address), "err", err)
		return nil, l.residencyErr(address, err)
	}
	conn, err := l.m.dial(l.shard, string(address), timeout)
	if err != nil {
		return nil, err
	}
	sc := l.track(conn, address)
	if sc == nil {
		_ = conn.Close()
		return nil, l.closedErr()
	}
	return sc, nil
}

// deliver hands an inbound connection to Accept, or closes it if the layer
// closes first.
func (l *streamLayer) deliver(conn net.Conn) {
	sc := l.track(conn, "")
	if sc == nil {
		_ = conn.Close()
		return
	}
	select {
	case l.accept <- sc:
	case <-l.done:
		_ = sc.Close()
	}
}

// shut closes the layer and its connections without touching the registry.
func (l *streamLayer) shut() {
	l.once.Do(func() {
		close(l.done)
		l.mu.Lock()
		l.closed = true
		conns := make([]*shardConn, 0, len(l.conns))
		for c := range l.conns {
			conns = append(conns, c)
		}
		l.mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
}

func (l *streamLayer) isClosed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// track wraps conn and records it, or returns nil if the layer is closed.
// target is the dialed address; empty for inbound connections.
func (l *streamLayer) track(conn net.Conn, target raft.ServerAddress) *shardConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	sc := &shardConn{Conn: conn, l: l, target: target}
	l.conns[sc] = struct{}{}
	return sc
}

func (l *streamLayer) untrack(c *shardConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

func (l *streamLayer) closedErr() error {
	return fmt.Errorf("raftmux: shard %d: %w: %w", l.shard, ErrClosed, net.ErrClosed)
}

func (l *streamLayer) residencyErr(target raft.ServerAddress, err error) error {
	return fmt.Errorf("%w: shard %d to %s: %w", ErrResidency, l.shard, target, err)
}

// shardConn is a connection of one shard. An outbound one asks the Guard
// before every Write, so a target the policy stops permitting receives
// nothing more: the Write fails with ErrResidency and the connection closes.
type shardConn struct {
	net.Conn
	l      *streamLayer
	target raft.ServerAddress // empty for inbound connections
	once   sync.Once
}

func (c *shardConn) Write(p []byte) (int, error) {
	if c.target != "" {
		if err := c.l.guard.AllowDial(c.target); err != nil {
			c.l.m.log.Warn("raftmux: open connection refused by guard", "shard", c.l.shard, "target", string(c.target), "err", err)
			_ = c.Close()
			return 0, c.l.residencyErr(c.target, err)
		}
	}
	return c.Conn.Write(p)
}

func (c *shardConn) Close() error {
	c.once.Do(func() { c.l.untrack(c) })
	return c.Conn.Close()
}

// NetConn returns the underlying connection (a *tls.Conn in TLS mode).
func (c *shardConn) NetConn() net.Conn { return c.Conn }
