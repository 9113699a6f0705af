package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// netLab gives each node its own network namespace on a private bridge, so
// that faults can cut the network between nodes: packets from one node's
// address are dropped on arrival at another (iptables INPUT in the
// receiver's namespace). The test process stays in the root namespace and
// reaches every node through the bridge, so clients see the cluster whole
// while the nodes see it split, as in Jepsen's setups.
//
// It needs root, ip (iproute2) and iptables; newNetLab skips the test
// otherwise.
type netLab struct {
	t      testing.TB
	bridge string
	ns     []string
	ips    []string
	veths  []string        // the bridge's end of each node's link
	cuts   map[[2]int]bool // from, to: packets from ips[from] dropped at ns[to]
	slowed map[int]bool
	// canSlow: the kernel has the tbf queueing discipline (see slow).
	canSlow bool
}

func newNetLab(t testing.TB, n int) *netLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("network namespaces need %s (apt-get install iproute2 iptables)", tool)
		}
	}
	id := os.Getpid() % 250
	l := &netLab{t: t, bridge: fmt.Sprintf("clvbr%d", id), cuts: map[[2]int]bool{}, slowed: map[int]bool{}}
	subnet := fmt.Sprintf("10.213.%d", id)
	t.Cleanup(l.teardown)
	l.run("ip", "link", "add", l.bridge, "type", "bridge")
	l.run("ip", "addr", "add", subnet+".1/24", "dev", l.bridge)
	l.run("ip", "link", "set", l.bridge, "up")
	// Docker sets the FORWARD policy to DROP, which also drops bridged
	// traffic when br_netfilter is loaded.
	l.run("iptables", "-I", "FORWARD", "-i", l.bridge, "-o", l.bridge, "-j", "ACCEPT")
	for i := 0; i < n; i++ {
		ns := fmt.Sprintf("clv%d-%d", id, i)
		veth := fmt.Sprintf("clv%dv%d", id, i)
		ip := fmt.Sprintf("%s.%d", subnet, 10+i)
		l.ns = append(l.ns, ns)
		l.ips = append(l.ips, ip)
		l.veths = append(l.veths, veth)
		l.run("ip", "netns", "add", ns)
		l.run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
		l.run("ip", "link", "set", veth, "master", l.bridge, "up")
		l.run("ip", "netns", "exec", ns, "ip", "addr", "add", ip+"/24", "dev", "eth0")
		l.run("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
		l.run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
	}
	if _, err := exec.LookPath("tc"); err == nil && n > 0 {
		probe := exec.Command("ip", "netns", "exec", l.ns[0], "tc", "qdisc", "add", "dev", "eth0", "root", "tbf",
			"rate", "1gbit", "burst", "64kbit", "latency", "10ms")
		if probe.Run() == nil {
			l.canSlow = true
			l.run("ip", "netns", "exec", l.ns[0], "tc", "qdisc", "del", "dev", "eth0", "root")
		}
	}
	return l
}

// Link speed and queue of a slowed node (see slow).
var slowLink = []string{"tbf", "rate", "2mbit", "burst", "32kbit", "latency", "150ms"}

// slow makes node i's link slow both ways: a token bucket of 2 Mbit/s that
// queues packets for up to 150 ms and drops what would wait longer (tc's
// tbf on both ends of the link). Packets are delayed by as much as the
// traffic through the link makes them queue. This kernel has no netem, so
// a fixed delay is not available.
func (l *netLab) slow(i int) {
	if l.slowed[i] {
		return
	}
	l.run(append([]string{"ip", "netns", "exec", l.ns[i], "tc", "qdisc", "add", "dev", "eth0", "root"}, slowLink...)...)
	l.run(append([]string{"tc", "qdisc", "add", "dev", l.veths[i], "root"}, slowLink...)...)
	l.slowed[i] = true
}

// prefix is the command prefix that runs a program in node i's namespace.
// ip netns exec execs the program itself, so signals reach it directly.
func (l *netLab) prefix(i int) []string { return []string{"ip", "netns", "exec", l.ns[i]} }

// cut drops every packet from node from arriving at node to. TCP between
// the two then stalls both ways (handshakes and acknowledgements are lost);
// gossip's UDP probes fail one way.
func (l *netLab) cut(from, to int) {
	if from == to || l.cuts[[2]int{from, to}] {
		return
	}
	l.run("ip", "netns", "exec", l.ns[to], "iptables", "-A", "INPUT", "-s", l.ips[from], "-j", "DROP")
	l.cuts[[2]int{from, to}] = true
}

// split cuts every pair across the two groups, both ways.
func (l *netLab) split(a, b []int) {
	for _, x := range a {
		for _, y := range b {
			l.cut(x, y)
			l.cut(y, x)
		}
	}
}

// heal removes every cut.
func (l *netLab) heal() {
	for _, ns := range l.ns {
		l.run("ip", "netns", "exec", ns, "iptables", "-F", "INPUT")
	}
	clear(l.cuts)
	for i := range l.slowed {
		l.run("ip", "netns", "exec", l.ns[i], "tc", "qdisc", "del", "dev", "eth0", "root")
		l.run("tc", "qdisc", "del", "dev", l.veths[i], "root")
	}
	clear(l.slowed)
}

// describe lists the current cuts, for the fault log.
func (l *netLab) describe() string {
	var s []string
	for c := range l.cuts {
		s = append(s, fmt.Sprintf("%d->%d", c[0], c[1]))
	}
	for i := range l.slowed {
		s = append(s, fmt.Sprintf("slow:%d", i))
	}
	return strings.Join(s, " ")
}

func (l *netLab) run(args ...string) {
	l.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (l *netLab) teardown() {
	quiet := func(args ...string) { _ = exec.Command(args[0], args[1:]...).Run() }
	for _, ns := range l.ns {
		quiet("ip", "netns", "del", ns) // removes its end of the veth, and so the pair
	}
	quiet("iptables", "-D", "FORWARD", "-i", l.bridge, "-o", l.bridge, "-j", "ACCEPT")
	quiet("ip", "link", "del", l.bridge)
}
