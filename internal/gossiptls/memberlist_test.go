package gossiptls

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"io"
	"log"
	"maps"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// cluster runs memberlist nodes over Transports and records what they
// observe through their event delegates. Every event of every node signals
// changed.
//
// The record is copied inside the events, while memberlist holds its lock:
// the *Node values Members returns are written by memberlist afterwards, so
// reading their fields races.
type cluster struct {
	t       *testing.T
	changed chan struct{}
	tune    func(*memberlist.Config) // applied to every node's config, if set

	mu     sync.Mutex
	views  map[string]map[string]seen // observer -> live node -> what it knows
	leaves map[string]map[string]bool // observer -> nodes it saw leave or die
}

// seen is what an observer knows of a live node.
type seen struct {
	addr string
	meta string
}

func newCluster(t *testing.T) *cluster {
	return &cluster{
		t: t, changed: make(chan struct{}, 1),
		views: map[string]map[string]seen{}, leaves: map[string]map[string]bool{},
	}
}

func (c *cluster) signal() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// node is one memberlist over a Transport.
type node struct {
	name string
	tr   *Transport
	ml   *memberlist.Memberlist
	meta atomic.Pointer[[]byte]
	c    *cluster
}

// start creates a node presenting a certificate of ca and trusting the given
// CAs (ca alone when none are given).
func (c *cluster) start(name string, ca *testCA, trusted ...*testCA) *node {
	t := c.t
	t.Helper()
	if len(trusted) == 0 {
		trusted = []*testCA{ca}
	}
	srv, cli := tlsConfigs(ca.Pair(t, name), trusted...)
	tr, err := New(Config{BindAddr: "127.0.0.1:0", ServerTLS: srv, ClientTLS: cli, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{name: name, tr: tr, c: c}
	n.setMeta("meta:" + name)

	mc := memberlist.DefaultLocalConfig()
	mc.Name = name
	mc.Transport = tr
	mc.ProbeInterval = 200 * time.Millisecond
	mc.ProbeTimeout = 100 * time.Millisecond
	mc.SuspicionMult = 2
	mc.GossipInterval = 20 * time.Millisecond
	// No periodic push-pull: after a join, everything travels as packets.
	mc.PushPullInterval = time.Hour
	mc.TCPTimeout = 2 * time.Second
	mc.Logger = log.New(io.Discard, "", 0)
	if os.Getenv("GOSSIPTLS_TEST_LOG") != "" {
		mc.Logger = log.New(os.Stderr, name+" ", log.Lmicroseconds)
	}
	mc.Delegate = n
	mc.Events = n
	if c.tune != nil {
		c.tune(mc)
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		_ = tr.Shutdown()
		t.Fatal(err)
	}
	n.ml = ml
	t.Cleanup(func() { _ = ml.Shutdown() })
	return n
}

func (n *node) addr() string { return n.tr.Addr().String() }

func (n *node) setMeta(s string) {
	b := []byte(s)
	n.meta.Store(&b)
}

// view returns a copy of the live nodes n knows.
func (n *node) view() map[string]seen {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	out := map[string]seen{}
	for k, v := range n.c.views[n.name] {
		out[k] = v
	}
	return out
}

// memberlist.Delegate
func (n *node) NodeMeta(limit int) []byte                  { return *n.meta.Load() }
func (n *node) NotifyMsg([]byte)                           {}
func (n *node) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (n *node) LocalState(join bool) []byte                { return nil }
func (n *node) MergeRemoteState(buf []byte, join bool)     {}

// memberlist.EventDelegate. NotifyLeave reports dead and left nodes alike
// (memberlist does not fill in Node.State).
func (n *node) NotifyJoin(m *memberlist.Node)   { n.record(m, false) }
func (n *node) NotifyUpdate(m *memberlist.Node) { n.record(m, false) }
func (n *node) NotifyLeave(m *memberlist.Node)  { n.record(m, true) }

func (n *node) record(m *memberlist.Node, left bool) {
	c := n.c
	c.mu.Lock()
	if c.views[n.name] == nil {
		c.views[n.name] = map[string]seen{}
		c.leaves[n.name] = map[string]bool{}
	}
	if left {
		delete(c.views[n.name], m.Name)
		c.leaves[n.name][m.Name] = true
	} else {
		c.views[n.name][m.Name] = seen{addr: m.Address(), meta: string(m.Meta)}
	}
	c.mu.Unlock()
	c.signal()
}

// sawLeave reports whether observer saw name leave or die.
func (c *cluster) sawLeave(observer, name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leaves[observer][name]
}

// join has n join through seed, failing the test on error.
func (n *node) join(seed *node) {
	n.c.t.Helper()
	if k, err := n.ml.Join([]string{seed.addr()}); err != nil || k != 1 {
		n.c.t.Fatalf("%s joining %s: contacted %d, err %v", n.name, seed.name, k, err)
	}
}

// waitMembers waits until every node of nodes sees exactly nodes as live
// members, each at its transport's address and with the metadata meta
// returns.
func (c *cluster) waitMembers(nodes []*node, meta func(name string) string) {
	c.t.Helper()
	want := map[string]seen{}
	for _, n := range nodes {
		want[n.name] = seen{addr: n.addr(), meta: meta(n.name)}
	}
	waitFor(c.t, c.changed, 10*time.Second, "membership to converge", func() bool {
		for _, n := range nodes {
			if !maps.Equal(n.view(), want) || n.ml.NumMembers() != len(want) {
				return false
			}
		}
		return true
	})
}

func defaultMeta(name string) string { return "meta:" + name }

// startCluster starts k nodes of ca, joined in a chain, and waits until they
// all see each other.
func startCluster(t *testing.T, ca *testCA, k int, tune func(*memberlist.Config)) (*cluster, []*node) {
	c := newCluster(t)
	c.tune = tune
	var nodes []*node
	for i := range k {
		n := c.start("n"+string(rune('0'+i)), ca)
		if i > 0 {
			n.join(nodes[i-1])
		}
		nodes = append(nodes, n)
	}
	c.waitMembers(nodes, defaultMeta)
	return c, nodes
}

func TestThreeNodesJoinOverTLS(t *testing.T) {
	ca := newCA(t, "ca")
	// Every node sees every node alive at its transport's address.
	_, nodes := startCluster(t, ca, 3, nil)
	for _, n := range nodes {
		if st := n.tr.Stats(); st.ConnsRejected != 0 {
			t.Errorf("%s: stats %+v, want nothing rejected", n.name, st)
		}
	}
	// n0 learnt of n2, which joined through n1, from gossip packets:
	// periodic push-pull is off.
	if st := nodes[0].tr.Stats(); st.PacketsReceived == 0 {
		t.Errorf("n0 received no packets: %+v", st)
	}
}

func TestDeadNodeIsDetected(t *testing.T) {
	ca := newCA(t, "ca")
	c, nodes := startCluster(t, ca, 3, nil)
	// A crash: no Leave, the transport just goes away.
	if err := nodes[2].ml.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c.changed, 10*time.Second, "n2 declared dead by n0 and n1", func() bool {
		return c.sawLeave("n0", "n2") && c.sawLeave("n1", "n2")
	})
	for _, obs := range nodes[:2] {
		if _, ok := obs.view()["n2"]; ok || obs.ml.NumMembers() != 2 {
			t.Errorf("%s still counts n2: %v", obs.name, obs.view())
		}
	}
}

func TestLeaveReachesOthersBeforeShutdown(t *testing.T) {
	ca := newCA(t, "ca")
	// Probes so rare that no failure is detected within the test: n0 and
	// n1 can only learn of n2's departure from its leave message, which
	// Shutdown must flush.
	c, nodes := startCluster(t, ca, 3, func(mc *memberlist.Config) { mc.ProbeInterval = time.Hour })
	if err := nodes[2].ml.Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := nodes[2].ml.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c.changed, 10*time.Second, "n2 seen leaving by n0 and n1", func() bool {
		return c.sawLeave("n0", "n2") && c.sawLeave("n1", "n2")
	})
}

func TestForeignCertificateCannotJoin(t *testing.T) {
	ca := newCA(t, "ca")
	foreign := newCA(t, "foreign")
	c, nodes := startCluster(t, ca, 2, nil)

	// mallory trusts the cluster CA, so only its own certificate is wrong:
	// the gossip listener itself must refuse it.
	mallory := c.start("mallory", foreign, ca, foreign)
	if k, err := mallory.ml.Join([]string{nodes[0].addr()}); err == nil || k != 0 {
		t.Fatalf("mallory joined: contacted %d, err %v", k, err)
	}
	// A node of the cluster refuses mallory's server certificate too.
	if k, err := nodes[1].ml.Join([]string{mallory.addr()}); err == nil || k != 0 {
		t.Fatalf("n1 joined mallory: contacted %d, err %v", k, err)
	}

	// A later, legitimate join converges without mallory.
	n2 := c.start("n2", ca)
	n2.join(nodes[0])
	all := append(nodes, n2)
	c.waitMembers(all, defaultMeta)
	if got := mallory.view(); len(got) != 1 || mallory.ml.NumMembers() != 1 {
		t.Fatalf("mallory sees %v", got)
	}
	if rejected := nodes[0].tr.Stats().ConnsRejected; rejected == 0 {
		t.Fatal("n0 counted no rejected connection")
	}
}

func TestNodeMetaPropagates(t *testing.T) {
	ca := newCA(t, "ca")
	c, nodes := startCluster(t, ca, 3, nil) // waits for every node's initial meta
	nodes[0].setMeta("meta:n0:v2")
	if err := nodes[0].ml.UpdateNode(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	c.waitMembers(nodes, func(name string) string {
		if name == "n0" {
			return "meta:n0:v2"
		}
		return defaultMeta(name)
	})
}

func TestGarbageDoesNotDisturbCluster(t *testing.T) {
	ca := newCA(t, "ca")
	c, nodes := startCluster(t, ca, 3, nil)
	target := nodes[0].addr()
	_, cli := nodeTLS(t, ca, "fuzzer") // a peer with a valid certificate
	cli.ServerName = "127.0.0.1"

	random := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return b
	}
	send := func(useTLS bool, payload []byte) {
		raw, err := net.Dial("tcp", target)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		var w io.Writer = raw
		if useTLS {
			tc := tls.Client(raw, cli)
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
			w = tc
		}
		_, _ = w.Write(payload)
	}
	packet := func(body []byte) []byte {
		return append(binary.BigEndian.AppendUint32([]byte{typePacket}, uint32(len(body))), body...)
	}

	send(false, random(4096))
	send(true, []byte{'z'})
	send(true, append([]byte{typePacket}, 0xff, 0xff, 0xff, 0xff))
	// Well-framed packets and streams whose contents are garbage reach
	// memberlist itself: every message type byte, followed by junk.
	var packets []byte
	for typ := range 32 {
		packets = append(packets, packet(append([]byte{byte(typ)}, random(64)...))...)
		send(true, append([]byte{typeStream, byte(typ)}, random(256)...))
	}
	for range 16 {
		packets = append(packets, packet(random(1+int(random(1)[0])))...)
	}
	send(true, packets)

	// The cluster still works: an update travels, and all stay alive.
	nodes[1].setMeta("meta:n1:after-garbage")
	if err := nodes[1].ml.UpdateNode(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	c.waitMembers(nodes, func(name string) string {
		if name == "n1" {
			return "meta:n1:after-garbage"
		}
		return defaultMeta(name)
	})
	for _, n := range nodes {
		for _, name := range []string{"n0", "n1", "n2"} {
			if c.sawLeave(n.name, name) {
				t.Errorf("%s saw %s fail", n.name, name)
			}
		}
	}
}
