package faultnet

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clover-kv/clover/internal/testwait"
)

// server is a TCP server on loopback registered as one node. It counts raw
// accepts (before the Network's listener wrapper) and reports every finished
// connection handler.
type server struct {
	addr    string
	accepts atomic.Int64
	done    chan string // what each handler read before its conn ended
}

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

// startServer runs handle for every accepted conn of node.
func startServer(t *testing.T, n *Network, node string, handle func(net.Conn) string) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	s := &server{addr: ln.Addr().String(), done: make(chan string, 16)}
	n.Register(node, s.addr)
	wl := n.Listener(node, countingListener{ln, &s.accepts})
	go func() {
		for {
			c, err := wl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				s.done <- handle(c)
			}()
		}
	}()
	return s
}

func echo(c net.Conn) string {
	_, _ = io.Copy(c, c)
	return ""
}

func dial(t *testing.T, n *Network, from, addr string) net.Conn {
	t.Helper()
	c, err := n.Dialer(from)(context.Background(), addr)
	if err != nil {
		t.Fatalf("dial %s -> %s: %v", from, addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// roundTrip sends msg to an echo server and returns how long the echo took.
func roundTrip(t *testing.T, c net.Conn, msg string) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(buf) != msg {
		t.Fatalf("echo = %q, want %q", buf, msg)
	}
	return time.Since(start)
}

func waitDone(t *testing.T, s *server) string {
	t.Helper()
	select {
	case got := <-s.done:
		return got
	case <-time.After(5 * time.Second):
		t.Fatal("server connection did not end")
		return ""
	}
}

func TestPartitionBlocksDialAndBreaksConns(t *testing.T) {
	n := New()
	sa := startServer(t, n, "a", echo)
	sb := startServer(t, n, "b", echo)
	sc := startServer(t, n, "c", echo)

	ab := dial(t, n, "a", sb.addr)
	ba := dial(t, n, "b", sa.addr)
	roundTrip(t, ab, "x")
	roundTrip(t, ba, "y")
	acceptsB := sb.accepts.Load()

	n.Partition("a", "b")

	if _, err := ab.Read(make([]byte, 1)); err == nil {
		t.Fatal("read on a partitioned conn succeeded")
	}
	if _, err := ba.Write([]byte("z")); err == nil {
		t.Fatal("write on a partitioned conn succeeded")
	}
	waitDone(t, sb) // the accepting side saw its conn end too
	waitDone(t, sa)

	for _, d := range []struct{ from, addr string }{{"a", sb.addr}, {"b", sa.addr}} {
		_, err := n.Dialer(d.from)(context.Background(), d.addr)
		if !errors.Is(err, ErrPartitioned) {
			t.Fatalf("dial %s -> %s = %v, want ErrPartitioned", d.from, d.addr, err)
		}
	}
	if got := sb.accepts.Load(); got != acceptsB {
		t.Fatalf("b accepted %d conns during the partition", got-acceptsB)
	}
	roundTrip(t, dial(t, n, "a", sc.addr), "a and c still talk")

	n.Heal()
	roundTrip(t, dial(t, n, "a", sb.addr), "healed")
	roundTrip(t, dial(t, n, "b", sa.addr), "healed")
}

func TestIsolate(t *testing.T) {
	n := New()
	sa := startServer(t, n, "a", echo)
	sb := startServer(t, n, "b", echo)
	sc := startServer(t, n, "c", echo)

	// An outside client, not dialing through the Network.
	ext, err := net.Dial("tcp", sc.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ext.Close() }()
	roundTrip(t, ext, "outside")

	n.Isolate("c")

	if _, err := ext.Read(make([]byte, 1)); err == nil {
		t.Fatal("outside conn to an isolated node still open")
	}
	ext2, err := net.Dial("tcp", sc.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ext2.Close() }()
	if _, err := ext2.Read(make([]byte, 1)); err == nil {
		t.Fatal("isolated node served a new outside conn")
	}
	for _, d := range []struct{ from, addr string }{{"a", sc.addr}, {"c", sa.addr}, {"c", sb.addr}} {
		if _, err := n.Dialer(d.from)(context.Background(), d.addr); !errors.Is(err, ErrPartitioned) {
			t.Fatalf("dial %s -> %s = %v, want ErrPartitioned", d.from, d.addr, err)
		}
	}
	roundTrip(t, dial(t, n, "a", sb.addr), "a and b unaffected")

	n.Heal()
	roundTrip(t, dial(t, n, "a", sc.addr), "healed")
}

func TestDelayAddsToRoundTrip(t *testing.T) {
	const d = 60 * time.Millisecond
	n := New()
	sb := startServer(t, n, "b", echo)
	c := dial(t, n, "a", sb.addr)

	cases := []struct {
		name  string
		apply func()
		min   time.Duration
	}{
		{"a->b (write side)", func() { n.Delay("a", "b", d) }, d},
		{"b->a (read side)", func() { n.Delay("b", "a", d) }, d},
		{"both ways", func() { n.Delay("a", "b", d); n.Delay("b", "a", d) }, 2 * d},
	}
	for _, tc := range cases {
		n.Heal()
		tc.apply()
		if rt := roundTrip(t, c, "ping"); rt < tc.min {
			t.Errorf("%s: round trip %v, want >= %v", tc.name, rt, tc.min)
		}
	}

	n.Heal()
	n.Delay("b", "a", d)
	start := time.Now()
	dial(t, n, "a", sb.addr)
	if el := time.Since(start); el < d {
		t.Errorf("dial took %v with the reply path delayed by %v", el, d)
	}
}

func TestDelayRespectsWriteDeadlineAndClose(t *testing.T) {
	n := New()
	sb := startServer(t, n, "b", echo)
	c := dial(t, n, "a", sb.addr)
	n.Delay("a", "b", time.Hour)

	if err := c.SetWriteDeadline(time.Now().Add(30 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := c.Write([]byte("late"))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("delayed write past its deadline = %v, want a timeout", err)
	}

	if err := c.SetWriteDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() {
		_, err := c.Write([]byte("held"))
		res <- err
	}()
	n.Partition("a", "b")
	select {
	case err := <-res:
		if err == nil {
			t.Fatal("held write succeeded across a partition")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("partition did not release a delayed write")
	}
}

// greet writes "hi", then reports everything it reads until EOF.
func greet(c net.Conn) string {
	if _, err := c.Write([]byte("hi")); err != nil {
		return "write failed"
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

func TestDropOneWayWriteSide(t *testing.T) {
	n := New()
	sb := startServer(t, n, "b", greet)
	n.DropOneWay("a", "b")

	c := dial(t, n, "a", sb.addr)
	if k, err := c.Write([]byte("lost")); err != nil || k != 4 {
		t.Fatalf("dropped write = %d, %v; want silent success", k, err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("b->a during a->b drop: %q, %v", buf, err)
	}

	n.Heal() // closes the conn that lost bytes
	if got := waitDone(t, sb); got != "" {
		t.Fatalf("b received %q across a dropped link", got)
	}

	c2 := dial(t, n, "a", sb.addr)
	if _, err := io.ReadFull(c2, buf); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Write([]byte("kept")); err != nil {
		t.Fatal(err)
	}
	_ = c2.Close()
	if got := waitDone(t, sb); got != "kept" {
		t.Fatalf("after heal b received %q, want %q", got, "kept")
	}
}

func TestDropOneWayReadSide(t *testing.T) {
	n := New()
	sa := startServer(t, n, "a", greet)
	n.DropOneWay("a", "b")

	c := dial(t, n, "b", sa.addr) // b dials a; a's "hi" must not reach b
	fc := c.(*conn)
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	errDelivered := errors.New("bytes delivered across a dropped link")
	got := make(chan error, 1)
	go func() {
		k, err := c.Read(make([]byte, 8))
		if k > 0 {
			err = errDelivered
		}
		got <- err
	}()
	testwait.For(t, 5*time.Second, "a's greeting to reach b's wrapper", fc.inTainted.Load)
	n.Heal()
	if err := <-got; err == nil || errors.Is(err, errDelivered) {
		t.Fatalf("read on a conn that lost bytes = %v, want a closed-conn error after heal", err)
	}
	_ = c.Close()
	if got := waitDone(t, sa); got != "ping" {
		t.Fatalf("a received %q, want %q (b->a is not dropped)", got, "ping")
	}
}

func TestUnknownAddress(t *testing.T) {
	n := New()
	_, err := n.Dialer("a")(context.Background(), "127.0.0.1:1")
	if !errors.Is(err, ErrUnknownAddress) {
		t.Fatalf("dial unregistered = %v, want ErrUnknownAddress", err)
	}
}
