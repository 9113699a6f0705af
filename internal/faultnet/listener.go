package faultnet

import (
	"net"
	"sync"
)

// Listener wraps ln, the listener of node, so that connections it accepts
// are closed when node is isolated and refused while it stays isolated. This
// matters for peers that do not dial through this Network; connections
// between registered nodes are faulted by the dialer's wrapper already.
func (n *Network) Listener(node string, ln net.Listener) net.Listener {
	return &listener{Listener: ln, n: n, node: node}
}

type listener struct {
	net.Listener
	n    *Network
	node string
}

// Accept returns the next connection the isolation of the node lets through;
// connections arriving while it is isolated are closed at once.
func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ac := &acceptedConn{Conn: c, n: l.n, node: l.node}
		if l.n.trackAccepted(ac) {
			return ac, nil
		}
		_ = c.Close()
	}
}

// acceptedConn is an inbound connection of node, tracked so Isolate can
// close it.
type acceptedConn struct {
	net.Conn
	n    *Network
	node string
	once sync.Once
}

func (c *acceptedConn) Close() error {
	c.once.Do(func() { c.n.untrackAccepted(c) })
	return c.Conn.Close()
}

func (n *Network) trackAccepted(c *acceptedConn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, iso := n.isolated[c.node]; iso {
		return false
	}
	n.accepted[c] = struct{}{}
	return true
}

func (n *Network) untrackAccepted(c *acceptedConn) {
	n.mu.Lock()
	delete(n.accepted, c)
	n.mu.Unlock()
}
