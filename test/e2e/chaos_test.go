package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/clover-kv/clover/client"
)

// TestChaos runs a workload against the demo topology (ie-1, ie-2, no-1,
// us-1, each cloverd in its own network namespace) while a nemesis injects
// one fault at a time, chosen at random from a seed: SIGKILL and restart of
// a node or of a shard's leader, SIGSTOP/SIGCONT pauses, a node isolated, a
// two-two split, one-way packet loss, a slow link (packets queued up to
// 150 ms, then dropped), and policy changes under traffic that
// move every shard's leadership (leadership transfers) or take a replica
// away and add one back (membership changes). Nodes keep few log entries
// behind their snapshots, so followers that fall behind catch up by
// snapshot. Afterwards it checks:
//
//   - the register history (get, put, compare-and-swap on a few keys) is
//     linearizable (Porcupine);
//   - every acknowledged write of a set workload is still there;
//   - no byte of a canary written to the EEA keyspace appears in any file
//     under the US node's data directory or in its log;
//   - the placement audit (clover placement verify) is clean;
//   - every replica of every shard holds identical data (clover placement
//     check: a hash per replica at the same applied index).
//
// It runs only when CLOVER_CHAOS gives its duration (make chaos):
//
//	CLOVER_CHAOS=5m CLOVER_CHAOS_SEED=42 go test ./test/e2e -run TestChaos -v -timeout 30m
//
// The seed is printed; the same seed replays the same choice of faults (the
// timing of a real cluster still varies). On a failure, Porcupine's HTML
// visualisation and every node's log are written to CLOVER_CHAOS_ARTIFACTS
// (default: a new directory under the system's temporary directory).
func TestChaos(t *testing.T) {
	duration := chaosDuration(t)
	needBinaries(t)
	seed := chaosSeed(t)
	t.Logf("chaos: seed %d (replay with CLOVER_CHAOS_SEED=%d), %v of faults", seed, seed, duration)
	fmt.Fprintf(os.Stderr, "chaos: seed %d\n", seed)
	rng := mrand.New(mrand.NewPCG(seed, seed^0x5eed))

	lab := newNetLab(t, len(demoNodes()))
	c := newClusterAt(t, demoNodes(), lab)
	for _, n := range c.nodes {
		// Snapshots every 128 entries, checked every second, keeping only
		// 64 entries behind them: a follower that was down, paused or cut
		// off for a second or two is sent a snapshot, not the log.
		n.extra = []string{"--raft-snapshot-threshold=128", "--raft-snapshot-interval=1s", "--raft-trailing-logs=64"}
	}
	for _, n := range c.nodes {
		n.start()
	}
	c.waitLive(t, c.ids()...)
	cl := c.client(t)
	ctx := context.Background()
	const ks = "users"
	if _, err := cl.CreateKeyspace(ctx, ks, usersShards, eea); err != nil {
		t.Fatalf("create keyspace: %v", err)
	}
	waitConforming(t, c, ks)
	c.waitKeyspaceKnown(t, ks, c.ids()...)

	// The needle must stay verbatim through Pebble's block compression
	// (snappy turns any 4-byte run seen earlier in a block into a
	// back-reference): random capitals that no other value contains.
	canary := canaryText(40)
	if _, err := cl.Put(ctx, ks, []byte("canary"), []byte(canary)); err != nil {
		t.Fatalf("write canary: %v", err)
	}

	rec := newRecorder()
	set := newLedger(usersShards)
	stop := make(chan struct{})
	setCtx, stopSet := context.WithCancel(ctx)
	var wg sync.WaitGroup
	const registerWorkers, registerKeys, setWorkers = 6, 4, 2
	for w := 0; w < registerWorkers; w++ {
		wg.Go(func() { registerWorker(cl, ks, rec, w, registerWorkers, registerKeys, seed, stop) })
	}
	run := randomHex(t)
	for w := 0; w < setWorkers; w++ {
		wg.Go(func() { write(setCtx, cl, set, w, run) })
	}

	nem := &nemesis{t: t, c: c, lab: lab, cl: cl, ks: ks, rng: rng}
	deadline := time.Now().Add(duration)
	for time.Now().Before(deadline) {
		nem.step()
	}
	nem.healAll()
	nem.setPolicy(eea)
	close(stop)
	stopSet()
	wg.Wait()
	c.waitLive(t, c.ids()...)
	waitConforming(t, c, ks)

	history := rec.history()
	t.Logf("chaos: %d faults (%s); %d register operations, %d of unknown outcome; %d set writes acknowledged",
		nem.count, nem.summary(), len(history), unknownOps(history), len(set.acked))

	art := &artifacts{t: t, c: c}
	defer func() {
		if t.Failed() {
			art.saveLogs()
		}
	}()
	checkLinearizable(t, art, history)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	checkAllReadable(rctx, t, cl, set.acked)
	checkNoCanary(t, c, canary)
	checkPlacement(t, cl)
	checkReplicasIdentical(t, cl, ks)
	t.Logf("chaos: %d snapshots installed on followers", countInLogs(t, c, "Installed remote snapshot"))
}

// checkReplicasIdentical compares a hash of every replica of every shard.
func checkReplicasIdentical(t *testing.T, cl *client.Client, ks string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := cl.CheckReplicas(ctx, ks, time.Minute)
	if err != nil {
		t.Fatalf("check replicas: %v", err)
	}
	keys := uint64(0)
	for _, s := range rep.Shards {
		if s.Status != "identical" {
			t.Errorf("shard %d: replicas %s: %+v", s.ShardID, s.Status, s.Replicas)
		}
		if len(s.Replicas) > 0 {
			keys += s.Replicas[0].Keys
		}
	}
	t.Logf("chaos: %d shards, every replica identical: %v (%d keys)", len(rep.Shards), rep.OK, keys)
}

// countInLogs counts the lines of every node's log that contain s.
func countInLogs(t *testing.T, c *cluster, s string) int {
	n := 0
	for _, nd := range c.nodes {
		b, err := os.ReadFile(nd.logPath)
		if err != nil {
			t.Errorf("read %s: %v", nd.logPath, err)
			continue
		}
		n += bytes.Count(b, []byte(s))
	}
	return n
}

func chaosDuration(t *testing.T) time.Duration {
	v := os.Getenv("CLOVER_CHAOS")
	if v == "" {
		t.Skip("set CLOVER_CHAOS to a duration to run the fault-injection suite (make chaos)")
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("CLOVER_CHAOS=%q: want a positive duration such as 5m", v)
	}
	return d
}

func chaosSeed(t *testing.T) uint64 {
	if v := os.Getenv("CLOVER_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CLOVER_CHAOS_SEED=%q: want an unsigned integer", v)
		}
		return s
	}
	return uint64(time.Now().UnixNano())
}

// canaryText is n random capital letters from G to Z: no workload value
// (digits, lower case, hex) shares a 4-byte run with it.
func canaryText(n int) string {
	const letters = "GHIJKLMNOPQRSTUVWXYZ"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

// waitConforming waits until every shard of ks has its full replica set
// and a leader.
func waitConforming(t *testing.T, c *cluster, ks string) {
	t.Helper()
	c.waitFor(t, 2*readyTimeout, ks+" conforming", func(ctx context.Context, cl *client.Client) (bool, string) {
		st, err := cl.KeyspaceStatus(ctx, ks)
		if err != nil {
			return false, err.Error()
		}
		for _, s := range st.Shards {
			if s.Status != "conforming" || s.Leader == "" {
				return false, fmt.Sprintf("shard %d %s, leader %q", s.ShardID, s.Status, s.Leader)
			}
		}
		return len(st.Shards) > 0, "no shards"
	})
}

// keyEpoch is how long the register workers use one set of keys.
const keyEpoch = 10 * time.Second

// registerWorker issues gets, puts and compare-and-swaps on a few keys
// until stop closes. Values are unique; a compare-and-swap expects the
// version this worker last saw for the key.
func registerWorker(cl *client.Client, ks string, rec *recorder, w, workers, keys int, seed uint64, stop <-chan struct{}) {
	rng := mrand.New(mrand.NewPCG(seed, uint64(w)))
	id := w
	seen := map[string]uint64{}
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		// Keys change every keyEpoch, as with Jepsen's independent keys:
		// each key's history stays short enough to check quickly.
		epoch := int(time.Since(rec.start) / keyEpoch)
		in := kvInput{key: fmt.Sprintf("r%d-%d", epoch, rng.IntN(keys))}
		switch p := rng.IntN(10); {
		case p < 4:
			in.kind = opGet
		case p < 7:
			in.kind, in.value = opPut, fmt.Sprintf("w%d-%d", w, n)
		default:
			in.kind, in.value, in.expect = opCAS, fmt.Sprintf("w%d-%d", w, n), seen[in.key]
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		call := rec.now()
		out, keep := doOp(ctx, cl, ks, in)
		cancel()
		if !keep {
			continue
		}
		rec.add(id, in, call, out)
		if out.unknown {
			id += workers // a new client: this one's operation never returned
			continue
		}
		if in.kind != opGet || out.ok {
			seen[in.key] = out.version
		}
	}
}

// nemesis injects one fault at a time: it applies one, holds it for one to
// five seconds, undoes it and lets the cluster settle.
type nemesis struct {
	t     *testing.T
	c     *cluster
	lab   *netLab
	cl    *client.Client
	ks    string
	rng   *mrand.Rand
	count int
	kinds map[string]int
	// leadersNO: the policy's leader preference is Norway (else Ireland).
	leadersNO bool
}

func (n *nemesis) step() {
	t := n.t
	t.Helper()
	hold := time.Duration(1000+n.rng.IntN(4000)) * time.Millisecond
	nodes := n.c.nodes
	victim := n.rng.IntN(len(nodes))
	var kind string
	var undo func()
	k := n.rng.IntN(9)
	if k == 7 && !n.lab.canSlow {
		k = 8 // no tbf in this kernel: one-way loss instead
	}
	switch k {
	case 0:
		kind = "kill"
		nodes[victim].crash()
		undo = func() { nodes[victim].start() }
	case 1:
		kind = "kill-leader"
		if i := n.leaderIndex(); i >= 0 {
			victim = i
		}
		nodes[victim].crash()
		undo = func() { nodes[victim].start() }
	case 2:
		kind = "pause"
		signal(t, nodes[victim], syscall.SIGSTOP)
		undo = func() { signal(t, nodes[victim], syscall.SIGCONT) }
	case 3:
		kind = "isolate-leader"
		if i := n.leaderIndex(); i >= 0 {
			victim = i
		}
		n.lab.split([]int{victim}, others(len(nodes), victim))
		undo = n.lab.heal
	case 4:
		kind = "split-2-2"
		perm := n.rng.Perm(len(nodes))
		n.lab.split(perm[:2], perm[2:])
		undo = n.lab.heal
	case 5:
		// A policy change under traffic: every shard's leadership moves
		// to the preferred region (leadership transfers), and back when
		// the preference flips again.
		kind = "move-leaders"
		n.leadersNO = !n.leadersNO
		p := eea
		if n.leadersNO {
			p.LeaderPreference = []string{"no-hamar"}
		} else {
			p.LeaderPreference = []string{"ie-dublin"}
		}
		n.setPolicy(p)
		undo = func() {}
	case 6:
		// Membership changes under traffic: one replica of every shard is
		// removed, and then a new one added (a non-voter caught up, often
		// by snapshot, then promoted).
		kind = "shrink-grow"
		p := eea
		p.Replicas = 2
		n.setPolicy(p)
		undo = func() { n.setPolicy(eea) }
	case 7:
		// Packets to and from one node delayed (and, past the queue,
		// dropped): a slow, congested link.
		kind = "slow-link"
		n.lab.slow(victim)
		undo = n.lab.heal
	default:
		kind = "one-way"
		to := (victim + 1 + n.rng.IntN(len(nodes)-1)) % len(nodes)
		n.lab.cut(victim, to)
		undo = n.lab.heal
	}
	where := nodes[victim].spec.ID
	if kind == "move-leaders" || kind == "shrink-grow" {
		where = n.ks
	}
	t.Logf("chaos: fault %d: %s on %s for %v %s", n.count+1, kind, where, hold, n.lab.describe())
	holdFault(t, hold)
	undo()
	n.count++
	if n.kinds == nil {
		n.kinds = map[string]int{}
	}
	n.kinds[kind]++
	// Settle: every node answers again before the next fault.
	n.c.waitLive(t, n.c.ids()...)
}

// holdFault keeps a fault in place for d: the fault's duration is the
// schedule, not a wait for anything. The test ending cuts it short.
func holdFault(t *testing.T, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.Context().Done():
	case <-timer.C:
	}
}

// setPolicy changes the keyspace's policy, retrying while the cluster is
// unavailable (the meta group electing); the controller then carries the
// change out.
func (n *nemesis) setPolicy(p client.Policy) {
	n.t.Helper()
	n.c.waitFor(n.t, readyTimeout, "the policy of "+n.ks+" set", func(ctx context.Context, _ *client.Client) (bool, string) {
		if _, err := n.cl.SetPolicy(ctx, n.ks, p); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}

// leaderIndex is the index of the node leading a random shard of the
// keyspace, or -1 when none is known.
func (n *nemesis) leaderIndex() int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ks, err := n.cl.Keyspace(ctx, n.ks)
	if err != nil || len(ks.Shards) == 0 {
		return -1
	}
	leader := ks.Shards[n.rng.IntN(len(ks.Shards))].Leader
	for i, nd := range n.c.nodes {
		if nd.spec.ID == leader {
			return i
		}
	}
	return -1
}

func (n *nemesis) healAll() {
	n.lab.heal()
	for _, nd := range n.c.nodes {
		if !nd.running() {
			nd.start()
		}
	}
}

func (n *nemesis) summary() string {
	var s []string
	for k, v := range n.kinds {
		s = append(s, fmt.Sprintf("%s %d", k, v))
	}
	if len(s) == 0 {
		return "none"
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

func others(n, except int) []int {
	var out []int
	for i := 0; i < n; i++ {
		if i != except {
			out = append(out, i)
		}
	}
	return out
}

func signal(t *testing.T, n *node, sig syscall.Signal) {
	t.Helper()
	if !n.running() {
		t.Fatalf("signal %v to %s: not running (exit: %v)", sig, n.spec.ID, n.waitErr)
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to %s: %v", sig, n.spec.ID, err)
	}
}

func unknownOps(h []porcupine.Operation) int {
	n := 0
	for _, op := range h {
		if op.Output.(kvOutput).unknown {
			n++
		}
	}
	return n
}

// artifacts keeps what a failed run leaves for a human.
type artifacts struct {
	t   *testing.T
	c   *cluster
	dir string
}

func (a *artifacts) path(name string) string {
	if a.dir == "" {
		a.dir = os.Getenv("CLOVER_CHAOS_ARTIFACTS")
		if a.dir == "" {
			d, err := os.MkdirTemp("", "clover-chaos-")
			if err != nil {
				a.t.Fatal(err)
			}
			a.dir = d
		}
		if err := os.MkdirAll(a.dir, 0o755); err != nil {
			a.t.Fatal(err)
		}
		a.t.Logf("chaos: artifacts in %s", a.dir)
	}
	return filepath.Join(a.dir, name)
}

func (a *artifacts) saveLogs() {
	for _, n := range a.c.nodes {
		b, err := os.ReadFile(n.logPath)
		if err == nil {
			err = os.WriteFile(a.path(n.spec.ID+".log"), b, 0o644)
		}
		if err != nil {
			a.t.Logf("keep log of %s: %v", n.spec.ID, err)
		}
	}
}

func checkLinearizable(t *testing.T, art *artifacts, history []porcupine.Operation) {
	t.Helper()
	history = dropUnobserved(history)
	res, info := porcupine.CheckOperationsVerbose(kvModel, history, 5*time.Minute)
	switch res {
	case porcupine.Ok:
		t.Logf("chaos: %d operations linearizable", len(history))
	case porcupine.Unknown:
		t.Errorf("linearizability check of %d operations timed out", len(history))
	default:
		p := art.path("history.html")
		if err := porcupine.VisualizePath(kvModel, info, p); err != nil {
			t.Logf("visualise: %v", err)
		}
		t.Errorf("history of %d operations is not linearizable; see %s", len(history), p)
		// Name the keys whose histories fail, and write each as text.
		for _, part := range kvModel.Partition(history) {
			if porcupine.CheckOperations(kvModel, part) {
				continue
			}
			key := part[0].Input.(kvInput).key
			f := art.path("history-" + key + ".txt")
			sort.Slice(part, func(i, j int) bool { return part[i].Call < part[j].Call })
			var b strings.Builder
			for _, op := range part {
				ret := "never"
				if op.Return != math.MaxInt64 {
					ret = fmt.Sprintf("%.6f", float64(op.Return)/1e9)
				}
				fmt.Fprintf(&b, "%.6f %s client %d: %s\n", float64(op.Call)/1e9, ret, op.ClientId, kvModel.DescribeOperation(op.Input, op.Output))
			}
			if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
				t.Logf("write %s: %v", f, err)
			}
			t.Errorf("key %s: %d operations not linearizable; see %s", key, len(part), f)
		}
	}
}

// checkNoCanary looks for the canary's bytes in every file under the US
// node's data directory and in its log. As a control, the same search must
// find the canary on an EEA replica's disk.
func checkNoCanary(t *testing.T, c *cluster, canary string) {
	t.Helper()
	needle := []byte(canary)
	if len(filesContaining(t, c.node("ie-1").dataDir, needle)) == 0 {
		t.Errorf("control failed: the canary is in no file of ie-1, so the search could not see a leak")
	}
	us := c.node("us-1")
	hits := filesContaining(t, us.dataDir, needle)
	if log, err := os.ReadFile(us.logPath); err != nil {
		t.Errorf("read %s: %v", us.logPath, err)
	} else if bytes.Contains(log, needle) {
		hits = append(hits, us.logPath)
	}
	if len(hits) > 0 {
		t.Errorf("EEA canary found on non-EEA node us-1 in %v", hits)
		return
	}
	t.Logf("chaos: canary on ie-1's disk, absent from us-1's files and log")
}

func checkPlacement(t *testing.T, cl *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := cl.VerifyPlacement(ctx)
	if err != nil {
		t.Errorf("placement verify: %v", err)
		return
	}
	if !rep.OK {
		t.Errorf("placement verify: %d violations: %+v", len(rep.Violations), rep.Violations)
	}
}
