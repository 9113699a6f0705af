package frontdoor_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/clover-kv/clover/internal/frontdoor"
	"github.com/clover-kv/clover/internal/testwait"
)

// echoServer serves fl: every accepted connection echoes what it reads
// until it ends. It returns a channel that gets each accepted connection.
func echoServer(t *testing.T, fl *frontdoor.Listener) <-chan net.Conn {
	t.Helper()
	accepted := make(chan net.Conn, 1024)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := fl.Accept()
			if err != nil {
				return
			}
			accepted <- c
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { _ = fl.Close(); wg.Wait() })
	return accepted
}

func listen(t *testing.T, cfg frontdoor.Config) (*frontdoor.Listener, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := frontdoor.Wrap(ln, cfg)
	return fl, echoServer(t, fl)
}

func dial(t *testing.T, fl *frontdoor.Listener) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", fl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// echo checks that c is served: a byte sent comes back.
func echo(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte{'x'}); err != nil {
		t.Fatalf("write: %v", err)
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		t.Fatalf("connection not served: %v", err)
	}
}

// closedByServer waits until the server closes c (a read ends without
// data), failing the test if it does not within a generous bound.
func closedByServer(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	n, err := c.Read(b[:])
	var ne net.Error
	if n > 0 || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open (read %d bytes, %v)", n, err)
	}
}

// waitFor polls cond until it holds, failing the test after a generous bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, 10*time.Second, what, cond)
}

func waitAccepted(t *testing.T, accepted <-chan net.Conn) {
	t.Helper()
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("connection not accepted")
	}
}

// A full listener closes a newcomer at once when every open connection has
// spoken, and admits one again once a connection closes.
func TestFrontdoorRefusesOverTheBound(t *testing.T) {
	fl, accepted := listen(t, frontdoor.Config{MaxConns: 2})
	a, b := dial(t, fl), dial(t, fl)
	echo(t, a)
	echo(t, b)
	c := dial(t, fl)
	closedByServer(t, c)
	if s := fl.Stats(); s.Refused != 1 || s.Open != 2 || s.Evicted != 0 {
		t.Fatalf("stats %+v: want 1 refused, 2 open, none evicted", s)
	}
	waitAccepted(t, accepted)
	waitAccepted(t, accepted)
	_ = a.Close()
	// The server notices a's end (its echo returns) and closes its side.
	waitFor(t, "a's place to be released", func() bool { return fl.Stats().Open == 1 })
	d := dial(t, fl)
	echo(t, d)
	echo(t, b)
}

// A flood of idle connections cannot keep out a client that speaks: each
// newcomer evicts the oldest connection that has sent nothing.
func TestFrontdoorEvictsIdleConnections(t *testing.T) {
	fl, _ := listen(t, frontdoor.Config{MaxConns: 4})
	talker := dial(t, fl)
	echo(t, talker)
	var idle []net.Conn
	for range 10 {
		idle = append(idle, dial(t, fl))
	}
	// The last three idle ones hold the places left; the first seven were
	// evicted in the order they came.
	for _, c := range idle[:7] {
		closedByServer(t, c)
	}
	client := dial(t, fl)
	echo(t, client)
	echo(t, talker)
	closedByServer(t, idle[7])
	s := fl.Stats()
	if s.Evicted != 8 || s.Refused != 0 || s.Open != 4 {
		t.Fatalf("stats %+v: want 8 evicted, none refused, 4 open", s)
	}
}

// A connection that sends nothing is closed after FirstByteTimeout; one
// that spoke is not.
func TestFrontdoorClosesSilentConnections(t *testing.T) {
	fl, _ := listen(t, frontdoor.Config{MaxConns: 10, FirstByteTimeout: 200 * time.Millisecond})
	spoke := dial(t, fl)
	echo(t, spoke)
	silent := dial(t, fl)
	closedByServer(t, silent)
	// spoke was accepted first: had its timer not been stopped, it would
	// have fired before silent's.
	echo(t, spoke)
	if s := fl.Stats(); s.TimedOut != 1 || s.Open != 1 {
		t.Fatalf("stats %+v: want 1 timed out, 1 open", s)
	}
}

// Turned-away connections are logged at most once per interval.
func TestFrontdoorLogsAtMostOncePerInterval(t *testing.T) {
	var h countingHandler
	fl, _ := listen(t, frontdoor.Config{MaxConns: 1, LogInterval: time.Hour, Logger: slog.New(&h), Name: "test"})
	echo(t, dial(t, fl))
	for range 5 {
		closedByServer(t, dial(t, fl))
	}
	if s := fl.Stats(); s.Refused != 5 {
		t.Fatalf("stats %+v: want 5 refused", s)
	}
	if n := h.count(); n != 1 {
		t.Fatalf("%d log lines for 5 refusals in one interval, want 1", n)
	}
}

type countingHandler struct {
	mu sync.Mutex
	n  int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(context.Context, slog.Record) error {
	h.mu.Lock()
	h.n++
	h.mu.Unlock()
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }
func (h *countingHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}
