package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// demoPorts are the demo's ports for a first gRPC port: node i uses
// gRPC base+i, Raft base+100+i, gossip base+200+i.
func demoPorts(base int) []int {
	var out []int
	for _, off := range []int{0, 100, 200} {
		for i := range 4 {
			out = append(out, base+off+i)
		}
	}
	return out
}

// freeDemoBase finds a first gRPC port whose twelve demo ports are free for
// TCP and UDP.
func freeDemoBase(t *testing.T) int {
	t.Helper()
	for range 50 {
		base := 10000 + rand.IntN(22000) // below the ephemeral range
		free := true
		for _, p := range demoPorts(base) {
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				free = false
				break
			}
			pc, err := net.ListenPacket("udp", addr)
			ln.Close()
			if err != nil {
				free = false
				break
			}
			pc.Close()
		}
		if free {
			return base
		}
	}
	t.Fatal("no free range of demo ports")
	return 0
}

// demo is one run of scripts/demo.sh with the binaries TestMain built.
type demo struct {
	t      *testing.T
	dir    string
	base   int
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer // stdout and stderr
	lines  chan string  // every line of output, as it comes
	exited chan struct{}
	err    error // the script's exit, once exited is closed
}

func startDemo(t *testing.T, dir string, base int) *demo {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	d := &demo{t: t, dir: dir, base: base, lines: make(chan string, 1024), exited: make(chan struct{})}
	d.cmd = exec.Command("bash", filepath.Join(root, "scripts", "demo.sh"))
	d.cmd.Env = append(os.Environ(), "CLOVER_DEMO_DIR="+dir, "CLOVER_DEMO_PORT="+strconv.Itoa(base),
		"CLOVER_DEMO_BIN="+filepath.Dir(binaries.cloverd), "CLOVER_ENDPOINTS=")
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the script and its nodes, killed together
	pr, pw := io.Pipe()
	d.cmd.Stdout, d.cmd.Stderr = pw, pw
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			d.mu.Lock()
			d.out.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
			select {
			case d.lines <- sc.Text():
			default:
			}
		}
	}()
	go func() {
		d.err = d.cmd.Wait()
		pw.Close()
		close(d.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-d.exited
		}
	})
	return d
}

func (d *demo) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

// wait waits for the script to exit and returns its exit code.
func (d *demo) wait(timeout time.Duration) int {
	d.t.Helper()
	select {
	case <-d.exited:
	case <-time.After(timeout):
		d.t.Fatalf("demo still running after %v; output:\n%s", timeout, d.output())
	}
	if ee, ok := d.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if d.err != nil {
		d.t.Fatalf("demo: %v", d.err)
	}
	return 0
}

// waitLine waits until the script prints a line containing s.
func (d *demo) waitLine(s string, timeout time.Duration) {
	d.t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case line := <-d.lines:
			if strings.Contains(line, s) {
				return
			}
		case <-d.exited:
			d.t.Fatalf("demo exited (%v) before printing %q; output:\n%s", d.err, s, d.output())
		case <-timer.C:
			d.t.Fatalf("demo did not print %q within %v; output:\n%s", s, timeout, d.output())
		}
	}
}

// With one of its ports taken, the demo starts nothing: it names the port
// and CLOVER_DEMO_PORT, and leaves the previous run's logs where they are.
func TestDemoNamesATakenPort(t *testing.T) {
	needBinaries(t)
	dir := t.TempDir()
	base := freeDemoBase(t)
	taken := base + 100 + 2 // no-1's Raft port
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(taken)))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	oldLog := filepath.Join(dir, "ie-1.log")
	if err := os.WriteFile(oldLog, []byte("the last run's log\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	d := startDemo(t, dir, base)
	code := d.wait(time.Minute)
	out := d.output()
	if code == 0 {
		t.Fatalf("demo exited 0 with port %d taken; output:\n%s", taken, out)
	}
	for _, want := range []string{fmt.Sprintf("port %d", taken), "Raft of no-1", "CLOVER_DEMO_PORT"} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not say %q; output:\n%s", want, out)
		}
	}
	if strings.Contains(out, "started ") {
		t.Errorf("nodes were started with a port taken; output:\n%s", out)
	}
	if b, err := os.ReadFile(oldLog); err != nil || string(b) != "the last run's log\n" {
		t.Errorf("the previous run's log is gone or changed: %q, %v", b, err)
	}
}

// A node that exits (its gossip port is bound by another socket that does not listen, which the
// script's check cannot see) stops the demo with the end of that node's
// log, which names the cause.
func TestDemoShowsTheLogOfANodeThatExited(t *testing.T) {
	needBinaries(t)
	base := freeDemoBase(t)
	// A socket bound to ie-2's gossip port but not listening: the demo's
	// port check (a connection attempt) finds the port free, and ie-2
	// fails to listen on it once started.
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: base + 200 + 1, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	d := startDemo(t, t.TempDir(), base)
	if code := d.wait(2 * time.Minute); code == 0 {
		t.Fatalf("demo exited 0; output:\n%s", d.output())
	}
	out := d.output()
	for _, want := range []string{"node ie-2 exited", "address already in use"} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not show %q; output:\n%s", want, out)
		}
	}
}

// The demo runs until Ctrl-C; a second start keeps the first run's logs in
// previous/ and starts on fresh data; Ctrl-C stops every node with no
// ERROR in any log.
func TestDemoKeepsThePreviousLogsAndStopsQuietly(t *testing.T) {
	needBinaries(t)
	dir := t.TempDir()
	base := freeDemoBase(t)
	stale := filepath.Join(dir, "ie-1", "stale-file")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "no-1.log"), []byte("the last run's log\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	d := startDemo(t, dir, base)
	d.waitLine("Press Ctrl-C to stop.", 3*time.Minute)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the last run's data is still there: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "previous", "no-1.log")); err != nil || string(b) != "the last run's log\n" {
		t.Errorf("previous/no-1.log: %q, %v; want the last run's log", b, err)
	}
	if err := syscall.Kill(-d.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	d.wait(time.Minute)
	for _, id := range []string{"ie-1", "ie-2", "no-1", "us-1"} {
		b, err := os.ReadFile(filepath.Join(dir, id+".log"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("shutting down")) {
			t.Errorf("%s did not shut down on Ctrl-C", id)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "level=ERROR") {
				t.Errorf("%s logged an ERROR: %s", id, line)
			}
		}
	}
}
