// Package testcluster starts in-process Clover clusters for tests: real nodes
// (storage, Raft, gossip, gRPC on loopback) whose Raft traffic goes through a
// faultnet.Network, so a test can cut, drop or delay messages between chosen
// nodes, stop and restart nodes on their data, and wait on cluster events.
//
//	c := testcluster.Start(t, testcluster.DemoNodes()...)
//	cl := c.Client(t)
//	c.Net.Partition("ie-1", "no-1")
package testcluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/internal/faultnet"
	"github.com/clover-kv/clover/internal/testcerts"
	"github.com/clover-kv/clover/internal/testwait"
	"github.com/clover-kv/clover/internal/tlsfiles"
	"github.com/clover-kv/clover/placement"
	"github.com/clover-kv/clover/server"
)

// NodeSpec names a node and its locality ("country=IE,region=ie-dublin,zone=a").
type NodeSpec struct {
	ID       string
	Locality string
}

// DemoNodes is the demo topology: two nodes in Dublin (two zones), one in
// Hamar (Norway), one in the US.
func DemoNodes() []NodeSpec {
	return []NodeSpec{
		{"ie-1", "country=IE,region=ie-dublin,zone=a"},
		{"ie-2", "country=IE,region=ie-dublin,zone=b"},
		{"no-1", "country=NO,region=no-hamar,zone=a"},
		{"us-1", "country=US,region=us-east,zone=a"},
	}
}

// Node is one member of a test cluster.
type Node struct {
	Spec    NodeSpec
	Config  server.Config
	Server  *server.Server // nil while stopped
	DataDir string
}

// GRPCAddr is the node's client address.
func (n *Node) GRPCAddr() string { return n.Config.ListenGRPC }

// Cluster is a running test cluster.
type Cluster struct {
	t     testing.TB
	Net   *faultnet.Network
	Nodes []*Node
	byID  map[string]*Node
}

// Option changes every node's config before start.
type Option func(*server.Config)

// Start starts the nodes (the first bootstraps, the others join it) and waits
// until all are ready. The cluster is closed when the test ends.
func Start(t testing.TB, specs []NodeSpec, opts ...Option) *Cluster {
	t.Helper()
	c := &Cluster{t: t, Net: faultnet.New(), byID: map[string]*Node{}}
	root := t.TempDir()
	var seed string
	for i, sp := range specs {
		loc, err := placement.ParseLocality(sp.Locality)
		if err != nil {
			t.Fatalf("node %s: %v", sp.ID, err)
		}
		cfg := server.DefaultConfig()
		cfg.NodeID = sp.ID
		cfg.Locality = loc
		cfg.DataDir = filepath.Join(root, sp.ID)
		// Port 0 everywhere: StartNode records the bound addresses so a
		// restart reuses them.
		cfg.ListenGRPC = "127.0.0.1:0"
		cfg.ListenRaft = "127.0.0.1:0"
		cfg.ListenGossip = "127.0.0.1:0"
		cfg.Bootstrap = i == 0
		cfg.Raft.HeartbeatTimeout = 300 * time.Millisecond
		cfg.Raft.ElectionTimeout = 300 * time.Millisecond
		cfg.Raft.LeaderLeaseTimeout = 150 * time.Millisecond
		cfg.Raft.CommitTimeout = 10 * time.Millisecond
		cfg.RaftDial = c.Net.Dialer(sp.ID)
		cfg.Logger = testLogger(t, sp.ID)
		cfg.Insecure = true // Secure turns it off
		for _, o := range opts {
			o(&cfg)
		}
		n := &Node{Spec: sp, Config: cfg, DataDir: cfg.DataDir}
		c.Nodes = append(c.Nodes, n)
		c.byID[sp.ID] = n
	}
	t.Cleanup(c.Close)
	for i, n := range c.Nodes {
		if i > 0 {
			n.Config.Join = []string{seed}
		}
		c.StartNode(n.Spec.ID)
		if i == 0 {
			seed = n.Config.ListenGossip
			c.WaitReady(n.Spec.ID)
		}
	}
	for _, n := range c.Nodes {
		c.WaitReady(n.Spec.ID)
	}
	return c
}

// testLogger discards logs unless CLOVER_TEST_LOG is set (to a level).
func testLogger(t testing.TB, id string) *slog.Logger {
	lvl := os.Getenv("CLOVER_TEST_LOG")
	if lvl == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var l slog.Level
	_ = l.UnmarshalText([]byte(lvl))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})).With("test_node", id)
}

// Node returns a node by ID.
func (c *Cluster) Node(id string) *Node {
	n, ok := c.byID[id]
	if !ok {
		c.t.Fatalf("no node %q", id)
	}
	return n
}

// StartNode starts a stopped node on its data directory and addresses.
func (c *Cluster) StartNode(id string) {
	c.t.Helper()
	n := c.Node(id)
	if n.Server != nil {
		c.t.Fatalf("node %s already running", id)
	}
	s, err := server.New(n.Config)
	if err != nil {
		c.t.Fatalf("node %s: %v", id, err)
	}
	if err := s.Start(context.Background()); err != nil {
		c.t.Fatalf("node %s: start: %v", id, err)
	}
	n.Server = s
	n.Config.ListenGRPC, n.Config.ListenRaft, n.Config.ListenGossip = s.GRPCAddr(), s.RaftAddr(), s.GossipAddr()
	c.Net.Register(id, s.RaftAddr())
}

// StopNode closes a node; its data stays for a restart.
func (c *Cluster) StopNode(id string) {
	c.t.Helper()
	n := c.Node(id)
	if n.Server == nil {
		return
	}
	if err := n.Server.Close(); err != nil {
		c.t.Errorf("node %s: close: %v", id, err)
	}
	n.Server = nil
}

// WaitReady waits until a node has joined the cluster.
func (c *Cluster) WaitReady(id string) {
	c.t.Helper()
	n := c.Node(id)
	select {
	case <-n.Server.Ready():
	case <-time.After(30 * time.Second):
		c.t.Fatalf("node %s not ready after 30s", id)
	}
}

// Close stops every node.
func (c *Cluster) Close() {
	for _, n := range c.Nodes {
		if n.Server != nil {
			_ = n.Server.Close()
			n.Server = nil
		}
	}
}

// Endpoints lists the gRPC addresses of running nodes (or of the given ones).
func (c *Cluster) Endpoints(ids ...string) []string {
	var out []string
	for _, n := range c.Nodes {
		if n.Server == nil {
			continue
		}
		if len(ids) == 0 || contains(ids, n.Spec.ID) {
			out = append(out, n.GRPCAddr())
		}
	}
	return out
}

func contains(s []string, x string) bool {
	for _, e := range s {
		if e == x {
			return true
		}
	}
	return false
}

// Client returns a routing client of the whole cluster, closed at test end.
func (c *Cluster) Client(t testing.TB) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := client.New(ctx, client.Config{Insecure: true, Endpoints: c.Endpoints()})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// DirectClient returns a client that sends every request to one node as is.
func (c *Cluster) DirectClient(t testing.TB, id string) *client.Client {
	t.Helper()
	cl, err := client.New(context.Background(), client.Config{Insecure: true, Endpoints: []string{c.Node(id).GRPCAddr()}, Direct: true,
		Retry: client.RetryPolicy{MaxAttempts: 3, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// WaitFor polls cond until it holds, failing the test after timeout (see
// testwait.For).
func (c *Cluster) WaitFor(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	testwait.For(c.t, timeout, what, cond)
}

// FilesContaining lists the files under a node's data directory whose bytes
// contain needle.
func (c *Cluster) FilesContaining(id string, needle []byte) []string {
	c.t.Helper()
	var hits []string
	err := filepath.Walk(c.Node(id).DataDir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytesContains(b, needle) {
			hits = append(hits, path)
		}
		return nil
	})
	if err != nil {
		c.t.Fatalf("walk %s: %v", id, err)
	}
	return hits
}

func bytesContains(b, sub []byte) bool { return len(sub) > 0 && bytes.Contains(b, sub) }

// String describes the cluster for failure messages.
func (c *Cluster) String() string {
	s := ""
	for _, n := range c.Nodes {
		s += fmt.Sprintf("%s(%s) ", n.Spec.ID, n.GRPCAddr())
	}
	return s
}

// Secure runs every node in secure mode with a node certificate of p for
// its ID and locality; clients then need a user certificate of p (see
// ClientAs).
func Secure(t testing.TB, p *testcerts.PKI) Option {
	return func(cfg *server.Config) {
		f := p.Node(t, cfg.NodeID, cfg.Locality.String())
		sec, err := tlsfiles.NodeSecure(f.Cert, f.Key, f.CA)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ServerTLS, cfg.ClientTLS, cfg.TrustDomain, cfg.Insecure = sec.Server, sec.Client, sec.TrustDomain, false
	}
}

// PersonalDataGuardrail founds the cluster with the personal-data
// guardrail j (cloverd --personal-data-jurisdiction on the bootstrapping
// node only; the other nodes are not given it).
func PersonalDataGuardrail(j string) Option {
	return func(cfg *server.Config) {
		if cfg.Bootstrap {
			cfg.PersonalDataJurisdiction = j
		}
	}
}

// ClientAs returns a routing client of the whole cluster presenting the
// certificate in f, closed at test end.
func (c *Cluster) ClientAs(t testing.TB, f testcerts.Files) *client.Client {
	t.Helper()
	cl, err := c.NewClient(t, f)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return cl
}

// NewClient is ClientAs returning New's error.
func (c *Cluster) NewClient(t testing.TB, f testcerts.Files) (*client.Client, error) {
	t.Helper()
	tc, err := tlsfiles.Client(f.Cert, f.Key, f.CA)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := client.New(ctx, client.Config{Endpoints: c.Endpoints(), TLS: tc})
	if err == nil {
		t.Cleanup(func() { cl.Close() })
	}
	return cl, err
}
