package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/internal/testcerts"
	"github.com/clover-kv/clover/internal/testcluster"
	"github.com/clover-kv/clover/internal/tlsfiles"
	"github.com/clover-kv/clover/server"
)

// idleSockets is how many idle connections the flood opens to a listener.
const idleSockets = 20000

// idleHelperEnv, set to "host:port count", makes the test binary a helper
// process that opens count idle connections to host:port, prints "opened
// N failed M", and keeps them open until its standard input closes.
const idleHelperEnv = "CLOVER_TEST_IDLE_SOCKETS"

// TestIdleSocketsHelperProcess is the flood's helper process; it does
// nothing in an ordinary run.
func TestIdleSocketsHelperProcess(t *testing.T) {
	spec := os.Getenv(idleHelperEnv)
	if spec == "" {
		t.Skip("helper process of TestIdleSocketsLeaveTheNodeServing")
	}
	addr, countStr, _ := strings.Cut(spec, " ")
	count, err := strconv.Atoi(countStr)
	if err != nil {
		fmt.Println("bad spec", spec)
		os.Exit(2)
	}
	raiseNoFile()
	var mu sync.Mutex
	conns := make([]net.Conn, 0, count) // kept: a collected net.Conn closes its socket
	failed := 0
	next := make(chan struct{}, count)
	for range count {
		next <- struct{}{}
	}
	close(next)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: 10 * time.Second}
			for range next {
				c, err := d.Dial("tcp", addr)
				mu.Lock()
				if err != nil {
					failed++
				} else {
					conns = append(conns, c)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	fmt.Printf("opened %d failed %d\n", len(conns), failed)
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// raiseNoFile raises the process's open-file limit as far as it may go.
func raiseNoFile() syscall.Rlimit {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return r
	}
	r.Cur = r.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
	return r
}

// floodIdle opens idleSockets connections to addr that send nothing, from
// helper processes (each within its own open-file limit, so that this
// process's descriptors are the node's alone), and keeps them open until
// the test ends. It returns how many opened, failing the test unless
// that is more than maxConns.
func floodIdle(t *testing.T, addr string, maxConns int) int {
	t.Helper()
	lim := raiseNoFile()
	per := min(idleSockets, int(lim.Cur)-200)
	if per < 1 {
		t.Fatalf("open-file limit %d leaves no room for idle sockets", lim.Cur)
	}
	opened, failed := 0, 0
	for left := idleSockets; left > 0; left -= per {
		n := min(per, left)
		cmd := exec.Command(os.Args[0], "-test.run=^TestIdleSocketsHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), idleHelperEnv+"="+addr+" "+strconv.Itoa(n))
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
		line, err := bufio.NewReader(stdout).ReadString('\n')
		var o, f int
		if _, serr := fmt.Sscanf(line, "opened %d failed %d", &o, &f); err != nil || serr != nil {
			t.Fatalf("idle-socket helper: %q, %v", line, err)
		}
		opened, failed = opened+o, failed+f
	}
	if opened < idleSockets {
		t.Logf("opened %d of %d idle sockets to %s (%d failed; open-file limit %d per process)", opened, idleSockets, addr, failed, lim.Cur)
	} else {
		t.Logf("opened %d idle sockets to %s", opened, addr)
	}
	if opened <= maxConns {
		t.Fatalf("only %d idle sockets opened: not past the node's connection limit", opened)
	}
	return opened
}

// openFiles counts this process's open file descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
		t.Fatalf("out of file descriptors: %v", err)
	}
	if err != nil {
		t.Skipf("cannot count open files: %v", err)
	}
	return len(fds)
}

// 20,000 idle sockets to any of a node's listeners (gRPC, Raft, gossip)
// leave it serving a normal client that connects afterwards: a listener
// holds at most MaxConnections of them, idle ones give way to a client
// that speaks, and the node never runs out of file descriptors.
func TestIdleSocketsLeaveTheNodeServing(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 60,000 sockets")
	}
	// The nodes run in this process: it must hold a listener's share of
	// the flood and their stores.
	maxConns := server.DefaultConfig().MaxConnections
	if room := int(raiseNoFile().Cur) - 1024; room < maxConns {
		if room < 64 {
			t.Skipf("an open-file limit of %d leaves no room for the nodes", room+1024)
		}
		t.Logf("open-file limit: the nodes run with max connections %d instead of %d", room, maxConns)
		maxConns = room
	}
	p := testcerts.NewPKI(t, "frontdoor-test")
	c := testcluster.Start(t, threeEEANodes(), testcluster.Secure(t, p),
		func(cfg *server.Config) { cfg.MaxConnections = maxConns })
	ctx := ctxT(t)
	app := p.User(t, "app", "admin,reader,writer", "IE")
	tc, err := tlsfiles.Client(app.Cert, app.Key, app.CA)
	if err != nil {
		t.Fatal(err)
	}
	admin := c.ClientAs(t, app)
	if _, err := admin.CreateKeyspace(ctx, "users", 1, eea); err != nil {
		t.Fatal(err)
	}
	victim := c.Node("ie-1")
	for _, l := range []struct{ name, addr string }{
		{"grpc", victim.Server.GRPCAddr()},
		{"raft", victim.Server.RaftAddr()},
		{"gossip", victim.Server.GossipAddr()},
	} {
		t.Run(l.name, func(t *testing.T) {
			before := openFiles(t)
			floodIdle(t, l.addr, maxConns)
			// This process is the cluster: its descriptors are the nodes'.
			if n, bound := openFiles(t), before+maxConns+256; n > bound {
				t.Fatalf("the nodes hold %d file descriptors under the flood (%d before it), over the listener's bound", n, before)
			}
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			// A client that connects now, to the flooded node alone.
			cl, err := client.New(cctx, client.Config{Endpoints: []string{victim.GRPCAddr()}, Direct: true, TLS: tc})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			k := []byte("after-" + l.name)
			v, err := cl.Put(cctx, "users", k, []byte("served"))
			if err != nil {
				t.Fatalf("put through %s while %s is flooded: %v", victim.Spec.ID, l.name, err)
			}
			kv, err := cl.Get(cctx, "users", k)
			if err != nil || kv.Version != v || string(kv.Value) != "served" {
				t.Fatalf("get through %s while %s is flooded: %+v, %v", victim.Spec.ID, l.name, kv, err)
			}
		})
	}
}
