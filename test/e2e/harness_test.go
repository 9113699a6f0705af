package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clover-kv/clover/client"
)

// nodeSpec names a node and its locality.
type nodeSpec struct {
	ID       string
	Locality string
}

// demoNodes is the demo topology: two nodes in Dublin (two zones), one in
// Hamar (Norway), one in the US.
func demoNodes() []nodeSpec {
	return []nodeSpec{
		{"ie-1", "country=IE,region=ie-dublin,zone=a"},
		{"ie-2", "country=IE,region=ie-dublin,zone=b"},
		{"no-1", "country=NO,region=no-hamar,zone=a"},
		{"us-1", "country=US,region=us-east,zone=a"},
	}
}

// raftFlags make failure detection and elections quick on loopback.
var raftFlags = []string{
	"--raft-heartbeat-timeout=300ms",
	"--raft-election-timeout=300ms",
	"--raft-leader-lease-timeout=150ms",
	"--raft-commit-timeout=10ms",
}

const (
	readyTimeout = 30 * time.Second // a node or a cluster coming up
	exitTimeout  = 15 * time.Second // a process exiting after a signal
	logTailLines = 40
)

// node is one cloverd process, started and restarted on the same data
// directory and ports.
type node struct {
	t       testing.TB
	spec    nodeSpec
	dataDir string
	logPath string
	grpc    string
	raft    string
	gossip  string
	prefix  []string // command prefix, e.g. ip netns exec NS; none on loopback
	extra   []string // more cloverd flags, for every start
	first   []string // flags of the first start: --bootstrap, or --join SEED
	rejoin  []string // flags of every restart: --join with every other node

	cmd     *exec.Cmd
	done    chan struct{} // closed when the current process has exited
	waitErr error         // the process's exit; read after done is closed
	want    bool          // the test expects the process to be running
	starts  int
}

func newNode(t testing.TB, spec nodeSpec, root string, ports []string) *node {
	n := &node{
		t: t, spec: spec,
		dataDir: filepath.Join(root, spec.ID),
		logPath: filepath.Join(root, spec.ID+".log"),
		grpc:    ports[0], raft: ports[1], gossip: ports[2],
	}
	t.Cleanup(n.kill)
	return n
}

func (n *node) args() []string {
	a := []string{
		"--node-id", n.spec.ID, "--locality", n.spec.Locality, "--data-dir", n.dataDir,
		"--listen-grpc", n.grpc, "--listen-raft", n.raft, "--listen-gossip", n.gossip,
	}
	a = append(a, raftFlags...)
	a = append(a, n.extra...)
	if n.starts > 0 {
		return append(a, n.rejoin...)
	}
	return append(a, n.first...)
}

// start runs the node's process on its data directory and ports and waits
// until it has opened its meta group (see waitMetaOpen); it does not wait
// for the node to join (see cluster.waitLive).
func (n *node) start() {
	n.t.Helper()
	if n.running() {
		n.t.Fatalf("node %s is already running", n.spec.ID)
	}
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.t.Fatal(err)
	}
	defer logf.Close()
	args := n.args()
	n.starts++
	fmt.Fprintf(logf, "=== e2e: start #%d of %s: cloverd %s\n", n.starts, n.spec.ID, strings.Join(args, " "))
	argv := append(slices.Clone(n.prefix), binaries.cloverd)
	argv = append(argv, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("start %s: %v", n.spec.ID, err)
	}
	done := make(chan struct{})
	n.cmd, n.done, n.want = cmd, done, true
	go func() {
		n.waitErr = cmd.Wait()
		close(done)
	}()
	n.waitMetaOpen()
}

// waitMetaOpen waits until the node accepts connections on its gossip
// port. cloverd serves gRPC before it has opened its meta group, and an
// admin call in that window (ClusterStatus, CreateKeyspace) dereferences
// the missing group and crashes the process; the gossip listener opens
// only after the meta group, so from then on every call is safe.
func (n *node) waitMetaOpen() {
	n.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := net.DialTimeout("tcp", n.gossip, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("node %s: gossip port %s not open after %v: %v", n.spec.ID, n.gossip, readyTimeout, err)
		}
		select {
		case <-n.done:
			n.t.Fatalf("node %s exited while starting: %v", n.spec.ID, n.waitErr)
		case <-tick.C:
		}
	}
}

// running reports whether the current process has not exited.
func (n *node) running() bool {
	if n.done == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// crash kills the process with SIGKILL and waits for it to exit.
func (n *node) crash() {
	n.t.Helper()
	n.want = false
	if !n.running() {
		n.t.Fatalf("crash %s: not running (exit: %v)", n.spec.ID, n.waitErr)
	}
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		n.t.Fatalf("kill %s: %v", n.spec.ID, err)
	}
	n.waitExit(exitTimeout)
}

// stop sends SIGTERM and waits for a clean exit (status 0).
func (n *node) stop() {
	n.t.Helper()
	n.want = false
	if !n.running() {
		n.t.Fatalf("stop %s: not running (exit: %v)", n.spec.ID, n.waitErr)
	}
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		n.t.Fatalf("signal %s: %v", n.spec.ID, err)
	}
	if !n.waitExit(exitTimeout) {
		n.t.Errorf("node %s did not exit within %v of SIGTERM; killed", n.spec.ID, exitTimeout)
		n.kill()
		return
	}
	if n.waitErr != nil {
		n.t.Errorf("node %s exited uncleanly after SIGTERM: %v", n.spec.ID, n.waitErr)
	}
}

// waitExit waits for the process to exit; false on timeout.
func (n *node) waitExit(d time.Duration) bool {
	select {
	case <-n.done:
		return true
	case <-time.After(d):
		return false
	}
}

// kill ends a running process without ceremony (test cleanup).
func (n *node) kill() {
	if n.running() {
		_ = n.cmd.Process.Signal(syscall.SIGKILL)
		n.waitExit(exitTimeout)
	}
	n.want = false
}

// logTail returns the last lines of the node's log.
func (n *node) logTail(lines int) string {
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// cluster is a set of nodes started by one test.
type cluster struct {
	t       *testing.T
	nodes   []*node
	byID    map[string]*node
	poll    *client.Client            // lazily created; used by waits
	directs map[string]*client.Client // by node ID; see direct
}

// startCluster starts the nodes (the first bootstraps, the others join it)
// and waits until all of them are live. Every process is killed when the
// test ends, and the tail of every log is printed if it failed.
func startCluster(t *testing.T, specs []nodeSpec) *cluster {
	t.Helper()
	needBinaries(t)
	c := newCluster(t, specs)
	for _, n := range c.nodes {
		n.start()
	}
	c.waitLive(t, c.ids()...)
	return c
}

// newCluster lays out the nodes on loopback without starting them.
func newCluster(t *testing.T, specs []nodeSpec) *cluster {
	t.Helper()
	return newClusterAt(t, specs, nil)
}

// newClusterAt lays out the nodes without starting them: on loopback, or,
// with a lab, node i in the lab's namespace i on its own address.
func newClusterAt(t *testing.T, specs []nodeSpec, lab *netLab) *cluster {
	t.Helper()
	c := &cluster{t: t, byID: map[string]*node{}, directs: map[string]*client.Client{}}
	root := t.TempDir()
	var ports []string
	if lab == nil {
		ports = freePorts(t, 3*len(specs))
	} else {
		for i := range specs {
			ip := lab.ips[i]
			ports = append(ports, ip+":7400", ip+":7500", ip+":7600")
		}
	}
	// Cleanups run last-in first-out: processes are killed (node cleanups,
	// registered below) before the logs are printed.
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs()
		}
	})
	for i, sp := range specs {
		n := newNode(t, sp, root, ports[3*i:3*i+3])
		if lab != nil {
			n.prefix = lab.prefix(i)
		}
		c.nodes = append(c.nodes, n)
		c.byID[sp.ID] = n
	}
	// The first node founds the cluster and the others join it, as in
	// scripts/demo.sh. A restarted node joins every other node: cloverd
	// joins gossip only through --join, so a node restarted without it (the
	// founder) stays alone once the others have declared it dead.
	var all []string
	for _, n := range c.nodes {
		all = append(all, n.gossip)
	}
	for i, n := range c.nodes {
		n.first = []string{"--bootstrap"}
		if i > 0 {
			n.first = []string{"--join", c.nodes[0].gossip}
		}
		if others := slices.Delete(slices.Clone(all), i, i+1); len(others) > 0 {
			n.rejoin = []string{"--join", strings.Join(others, ",")}
		}
	}
	t.Cleanup(func() {
		if c.poll != nil {
			c.poll.Close()
		}
		for _, cl := range c.directs {
			cl.Close()
		}
	})
	return c
}

// dumpLogs prints the tail of every node's log and, when CLOVER_E2E_LOGS
// names a directory, copies the whole logs there.
func (c *cluster) dumpLogs() {
	keep := os.Getenv("CLOVER_E2E_LOGS")
	for _, n := range c.nodes {
		c.t.Logf("----- last %d lines of %s (%s) -----\n%s", logTailLines, n.spec.ID, n.logPath, n.logTail(logTailLines))
		if keep == "" {
			continue
		}
		b, err := os.ReadFile(n.logPath)
		if err == nil {
			err = os.MkdirAll(keep, 0o755)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(keep, c.t.Name()+"-"+n.spec.ID+".log"), b, 0o644)
		}
		if err != nil {
			c.t.Logf("keep log of %s: %v", n.spec.ID, err)
		}
	}
}

func (c *cluster) ids() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.spec.ID
	}
	return out
}

func (c *cluster) node(id string) *node {
	c.t.Helper()
	n, ok := c.byID[id]
	if !ok {
		c.t.Fatalf("no node %q", id)
	}
	return n
}

// endpoints lists the gRPC addresses of every node, or of the given ones.
func (c *cluster) endpoints(ids ...string) []string {
	var out []string
	for _, n := range c.nodes {
		if len(ids) == 0 || slices.Contains(ids, n.spec.ID) {
			out = append(out, n.grpc)
		}
	}
	return out
}

// client returns a routing client of the whole cluster, closed at test end.
func (c *cluster) client(t *testing.T) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	cl, err := client.New(ctx, client.Config{Insecure: true, Endpoints: c.endpoints()})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// pollClient is the client waits use: few retries, so one poll stays short.
func (c *cluster) pollClient(ctx context.Context) (*client.Client, error) {
	if c.poll != nil {
		return c.poll, nil
	}
	cl, err := client.New(ctx, client.Config{Insecure: true, Endpoints: c.endpoints(), DialTimeout: time.Second,
		Retry: client.RetryPolicy{MaxAttempts: 2, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}})
	if err != nil {
		return nil, err
	}
	c.poll = cl
	return cl, nil
}

// waitFor polls cond until it holds, failing the test after timeout with
// the last state cond described, or as soon as a node the test expects to
// be running has exited.
func (c *cluster) waitFor(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context, cl *client.Client) (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		for _, n := range c.nodes {
			if n.want && !n.running() {
				t.Fatalf("waiting for %s: node %s exited: %v", what, n.spec.ID, n.waitErr)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		cl, err := c.pollClient(ctx)
		if err == nil {
			var ok bool
			if ok, last = cond(ctx, cl); ok {
				cancel()
				return
			}
		} else {
			last = err.Error()
		}
		cancel()
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last seen: %s", timeout, what, last)
		}
		<-tick.C
	}
}

// waitLive waits until each given node, asked directly, reports every
// given node live and answering. Asking each node matters: a node is
// recorded live as soon as gossip sees it, but it knows the catalogue (and
// so its keyspaces) only once the meta group has replicated to it.
func (c *cluster) waitLive(t *testing.T, ids ...string) {
	t.Helper()
	c.waitFor(t, readyTimeout, fmt.Sprintf("nodes %v live", ids), func(ctx context.Context, _ *client.Client) (bool, string) {
		for _, asked := range ids {
			st, err := c.direct(asked).ClusterStatus(ctx)
			if err != nil {
				return false, fmt.Sprintf("%s: %v", asked, err)
			}
			var missing []string
			for _, id := range ids {
				i := slices.IndexFunc(st.Nodes, func(n client.NodeStatus) bool { return n.ID == id })
				switch {
				case i < 0:
					missing = append(missing, id+" (unknown)")
				case !st.Nodes[i].Live:
					missing = append(missing, id+" (not live)")
				case !st.Nodes[i].Reachable:
					missing = append(missing, fmt.Sprintf("%s (not answering: %s)", id, st.Nodes[i].Error))
				}
			}
			if len(missing) > 0 {
				return false, fmt.Sprintf("%s sees %v not live or not answering", asked, missing)
			}
		}
		return true, ""
	})
}

// waitKeyspaceKnown waits until each given node, asked directly, knows the
// keyspace (the catalogue reaches the meta group's followers after the
// creation returns).
func (c *cluster) waitKeyspaceKnown(t *testing.T, keyspace string, ids ...string) {
	t.Helper()
	c.waitFor(t, readyTimeout, fmt.Sprintf("%v to know keyspace %s", ids, keyspace), func(ctx context.Context, _ *client.Client) (bool, string) {
		for _, id := range ids {
			if _, err := c.direct(id).Keyspace(ctx, keyspace); err != nil {
				return false, fmt.Sprintf("%s: %v", id, err)
			}
		}
		return true, ""
	})
}

// direct returns a client that sends every request to one node as it is,
// without retries; waits use it to ask each node for its own view.
func (c *cluster) direct(id string) *client.Client {
	c.t.Helper()
	if cl, ok := c.directs[id]; ok {
		return cl
	}
	cl, err := client.New(context.Background(), client.Config{Insecure: true, Endpoints: []string{c.node(id).grpc}, Direct: true,
		Retry: client.RetryPolicy{MaxAttempts: 1, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}})
	if err != nil {
		c.t.Fatalf("direct client of %s: %v", id, err)
	}
	c.directs[id] = cl
	return cl
}

// waitLeaders waits until every shard of the keyspace reports a leader
// that is not one of the excluded nodes, and returns the keyspace.
func (c *cluster) waitLeaders(t *testing.T, keyspace string, exclude ...string) client.Keyspace {
	t.Helper()
	var ks client.Keyspace
	c.waitFor(t, readyTimeout, "a leader for every shard of "+keyspace, func(ctx context.Context, cl *client.Client) (bool, string) {
		var err error
		if ks, err = cl.Keyspace(ctx, keyspace); err != nil {
			return false, err.Error()
		}
		var bad []string
		for _, sh := range ks.Shards {
			if sh.Leader == "" || slices.Contains(exclude, sh.Leader) {
				bad = append(bad, fmt.Sprintf("shard %d leader %q", sh.ID, sh.Leader))
			}
		}
		return len(bad) == 0, strings.Join(bad, ", ")
	})
	return ks
}

// freePorts reserves n loopback ports that are free for both TCP and UDP
// (gossip uses both on one port). All are held until every one is chosen,
// so no two are the same.
func freePorts(t testing.TB, n int) []string {
	t.Helper()
	var held []func()
	defer func() {
		for _, release := range held {
			release()
		}
	}()
	var out []string
	for tries := 0; len(out) < n; tries++ {
		// Below the kernel's ephemeral range (32768 and up on Linux): a
		// port the kernel hands out to outgoing connections could be taken
		// by one between a node's kill and its restart on the same port.
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(10000+rand.IntN(22000)))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			if tries > 1000 {
				t.Fatalf("no free port: %v", err)
			}
			continue
		}
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			ln.Close()
			continue
		}
		held = append(held, func() { ln.Close(); pc.Close() })
		out = append(out, addr)
	}
	return out
}

// filesContaining lists the files under dir whose bytes contain needle. A
// file removed while the walk runs (a node compacting) is skipped.
func filesContaining(t testing.TB, dir string, needle []byte) []string {
	t.Helper()
	if len(needle) == 0 {
		t.Fatal("empty needle")
	}
	var hits []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if bytes.Contains(b, needle) {
			hits = append(hits, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return hits
}
