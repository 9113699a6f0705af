package raftmux

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/clover-kv/clover/internal/testcerts"
	"github.com/clover-kv/clover/internal/testwait"
	"github.com/clover-kv/clover/internal/tlsfiles"
)

// countingListener counts the connections the kernel handed to the Mux.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

type testMux struct {
	*Mux
	accepts *atomic.Int64
}

func newMux(t *testing.T, cfg Config) testMux {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := new(atomic.Int64)
	m := New(countingListener{ln, n}, cfg)
	t.Cleanup(func() { _ = m.Close() })
	return testMux{m, n}
}

func (m testMux) addr() raft.ServerAddress { return raft.ServerAddress(m.Addr().String()) }

// testGuard refuses the targets in deny and, when acceptErr is set, every
// inbound connection. It counts dial refusals.
type testGuard struct {
	mu        sync.Mutex
	deny      map[raft.ServerAddress]bool
	acceptErr error
	refused   atomic.Int64
}

var errNotPermitted = errors.New("target not permitted by policy")

func (g *testGuard) AllowDial(target raft.ServerAddress) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.deny[target] {
		g.refused.Add(1)
		return errNotPermitted
	}
	return nil
}

func (g *testGuard) AllowAccept() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.acceptErr
}

func (g *testGuard) denyTarget(a raft.ServerAddress) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.deny == nil {
		g.deny = make(map[raft.ServerAddress]bool)
	}
	g.deny[a] = true
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, timeout, what, cond)
}

// mustAccept returns the next inbound connection of sl, failing the test if
// none arrives in time.
func mustAccept(t *testing.T, sl net.Listener) net.Conn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := sl.Accept()
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("accept: %v", r.err)
		}
		t.Cleanup(func() { _ = r.c.Close() })
		return r.c
	case <-time.After(5 * time.Second):
		t.Fatal("no inbound connection")
		return nil
	}
}

// testTLS returns the mutual-TLS server and client configurations of a
// node holding a certificate, valid for 127.0.0.1, of a CA made for the test.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	ca := testcerts.NewCA(t, "clover-test")
	cert, key := ca.Issue(t, "clover-test-node")
	server, client, err := tlsfiles.Node(cert, key, ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	return server, client
}
