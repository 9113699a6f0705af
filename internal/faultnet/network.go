package faultnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

var (
	// ErrPartitioned reports a dial, Read or Write across a cut link.
	ErrPartitioned = errors.New("faultnet: link cut")
	// ErrUnknownAddress reports a dial to an address no node registered.
	ErrUnknownAddress = errors.New("faultnet: address not registered")
)

// link is one direction between two nodes.
type link struct{ from, to string }

// faults is what applies to one direction at one moment.
type faults struct {
	cut   bool
	drop  bool
	delay time.Duration
}

// Network decides the fate of traffic between registered nodes. Its methods
// are safe for concurrent use. Create it with [New].
type Network struct {
	mu       sync.Mutex
	nodes    map[string]string // address -> node
	cut      map[link]struct{} // stored in both directions
	isolated map[string]struct{}
	drop     map[link]struct{}
	delay    map[link]time.Duration
	dialed   map[*conn]struct{}
	accepted map[*acceptedConn]struct{}
	bytes    map[link]int64 // bytes delivered from -> to over dialed conns
}

// count records k bytes delivered from one node to another.
func (n *Network) count(from, to string, k int) {
	if k <= 0 {
		return
	}
	n.mu.Lock()
	if n.bytes == nil {
		n.bytes = map[link]int64{}
	}
	n.bytes[link{from, to}] += int64(k)
	n.mu.Unlock()
}

// Bytes returns how many bytes went from one node to another over
// connections dialed through the Network ("" matches every node).
func (n *Network) Bytes(from, to string) int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	var total int64
	for l, b := range n.bytes {
		if (from == "" || l.from == from) && (to == "" || l.to == to) {
			total += b
		}
	}
	return total
}

// New returns a Network with no nodes and no faults.
func New() *Network {
	return &Network{
		nodes:    make(map[string]string),
		cut:      make(map[link]struct{}),
		isolated: make(map[string]struct{}),
		drop:     make(map[link]struct{}),
		delay:    make(map[link]time.Duration),
		dialed:   make(map[*conn]struct{}),
		accepted: make(map[*acceptedConn]struct{}),
	}
}

// Register records that the given addresses ("host:port", spelled as dialers
// will spell them) belong to node. Registering an address again moves it to
// the new node.
func (n *Network) Register(node string, addrs ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, a := range addrs {
		n.nodes[a] = node
	}
}

// Dialer returns the dial function of node from. The target node is found by
// address (see [Network.Register]); an unregistered address fails with an
// error wrapping [ErrUnknownAddress], a cut link with one wrapping
// [ErrPartitioned], both without opening a connection. Otherwise a real TCP
// connection is made and wrapped so that faults apply to it for its lifetime.
func (n *Network) Dialer(from string) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		return n.dial(ctx, from, addr)
	}
}

func (n *Network) dial(ctx context.Context, from, addr string) (net.Conn, error) {
	to, fwd, back, err := n.route(from, addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: err}
	}
	if d := fwd.delay + back.delay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &conn{Conn: raw, n: n, local: from, remote: to, closed: make(chan struct{})}
	if !n.trackDialed(c) {
		_ = raw.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("%w: %s -> %s", ErrPartitioned, from, to)}
	}
	return c, nil
}

// route resolves addr to its node and returns the faults of both directions.
func (n *Network) route(from, addr string) (to string, fwd, back faults, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	to, ok := n.nodes[addr]
	if !ok {
		return "", faults{}, faults{}, fmt.Errorf("%w: %s", ErrUnknownAddress, addr)
	}
	fwd, back = n.faultsLocked(from, to), n.faultsLocked(to, from)
	if fwd.cut {
		return "", faults{}, faults{}, fmt.Errorf("%w: %s -> %s", ErrPartitioned, from, to)
	}
	return to, fwd, back, nil
}

// faultsOf returns the faults of the direction from -> to.
func (n *Network) faultsOf(from, to string) faults {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.faultsLocked(from, to)
}

func (n *Network) faultsLocked(from, to string) faults {
	l := link{from, to}
	_, cut := n.cut[l]
	_, isoFrom := n.isolated[from]
	_, isoTo := n.isolated[to]
	_, drop := n.drop[l]
	return faults{cut: cut || isoFrom || isoTo, drop: drop, delay: n.delay[l]}
}

// trackDialed records c unless its link was cut while it was being dialed.
func (n *Network) trackDialed(c *conn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.faultsLocked(c.local, c.remote).cut {
		return false
	}
	n.dialed[c] = struct{}{}
	return true
}

func (n *Network) untrackDialed(c *conn) {
	n.mu.Lock()
	delete(n.dialed, c)
	n.mu.Unlock()
}

// Partition cuts a and b apart in both directions: open connections between
// them are closed before Partition returns and new dials fail fast.
func (n *Network) Partition(a, b string) {
	n.mu.Lock()
	n.cut[link{a, b}] = struct{}{}
	n.cut[link{b, a}] = struct{}{}
	victims := n.dialedLocked(func(c *conn) bool {
		return (c.local == a && c.remote == b) || (c.local == b && c.remote == a)
	})
	n.mu.Unlock()
	closeAll(victims)
}

// Isolate cuts node from every other node, registered now or later, and from
// peers that reach it through a [Network.Listener] without dialing through
// this Network.
func (n *Network) Isolate(node string) {
	n.mu.Lock()
	n.isolated[node] = struct{}{}
	victims := n.dialedLocked(func(c *conn) bool { return c.local == node || c.remote == node })
	for ac := range n.accepted {
		if ac.node == node {
			victims = append(victims, ac)
		}
	}
	n.mu.Unlock()
	closeAll(victims)
}

// DropOneWay discards traffic from -> to while connections stay open, which
// models one-way packet loss. See the package documentation for what happens
// to a connection that lost bytes.
func (n *Network) DropOneWay(from, to string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.drop[link{from, to}] = struct{}{}
}

// Delay holds traffic from -> to for d; d <= 0 removes the delay.
func (n *Network) Delay(from, to string, d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if d <= 0 {
		delete(n.delay, link{from, to})
		return
	}
	n.delay[link{from, to}] = d
}

// Heal removes every fault. Connections that lost bytes to a drop are closed,
// since their streams can no longer be trusted; all others carry on.
func (n *Network) Heal() {
	n.mu.Lock()
	clear(n.cut)
	clear(n.isolated)
	clear(n.drop)
	clear(n.delay)
	victims := n.dialedLocked(func(c *conn) bool { return c.outTainted.Load() || c.inTainted.Load() })
	n.mu.Unlock()
	closeAll(victims)
}

func (n *Network) dialedLocked(match func(*conn) bool) []net.Conn {
	var out []net.Conn
	for c := range n.dialed {
		if match(c) {
			out = append(out, c)
		}
	}
	return out
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		_ = c.Close()
	}
}
