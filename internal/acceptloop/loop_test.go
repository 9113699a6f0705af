package acceptloop

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// scripted is a listener whose Accept returns the results a test feeds it.
type scripted struct {
	results chan result
	closed  chan struct{}
	once    sync.Once
	accepts atomic.Int32
}

type result struct {
	conn net.Conn
	err  error
}

func newScripted() *scripted {
	return &scripted{results: make(chan result, 16), closed: make(chan struct{})}
}

func (l *scripted) Accept() (net.Conn, error) {
	l.accepts.Add(1)
	select {
	case r := <-l.results:
		return r.conn, r.err
	case <-l.closed:
		return nil, fmt.Errorf("accept: %w", net.ErrClosed)
	}
}

func (l *scripted) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *scripted) Addr() net.Addr { return &net.TCPAddr{} }

var errTransient = errors.New("accept: too many open files")

// run starts Run and returns a channel with its result.
func run(ln net.Listener, done <-chan struct{}, serve func(net.Conn) bool, retry func(error, time.Duration)) <-chan error {
	out := make(chan error, 1)
	go func() { out <- Run(ln, done, serve, retry) }()
	return out
}

func result1(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

// Failed Accepts are retried with a wait that doubles from MinBackoff; an
// accepted connection resets it; closing done (and the listener, as an
// owner does) ends the loop with nil.
func TestRetriesWithDoublingBackoffAndShutsDown(t *testing.T) {
	ln := newScripted()
	a, b := net.Pipe()
	defer b.Close()
	for _, r := range []result{{err: errTransient}, {err: errTransient}, {err: errTransient}, {conn: a}, {err: errTransient}} {
		ln.results <- r
	}
	var mu sync.Mutex
	var waits []time.Duration
	fifth := make(chan struct{})
	served := make(chan net.Conn, 1)
	done := make(chan struct{})
	ch := run(ln, done, func(c net.Conn) bool { served <- c; return true }, func(err error, d time.Duration) {
		if !errors.Is(err, errTransient) {
			t.Errorf("retry got %v", err)
		}
		mu.Lock()
		waits = append(waits, d)
		if len(waits) == 4 {
			close(fifth)
		}
		mu.Unlock()
	})
	if c := <-served; c != a {
		t.Fatalf("served %v, want the accepted conn", c)
	}
	<-fifth
	close(done)
	ln.Close()
	if err := result1(t, ch); err != nil {
		t.Fatalf("Run after shutdown = %v, want nil", err)
	}
	want := []time.Duration{MinBackoff, 2 * MinBackoff, 4 * MinBackoff, MinBackoff}
	if !slices.Equal(waits, want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
}

// Shutting down while the loop waits out a backoff ends it without
// another Accept.
func TestShutdownDuringBackoff(t *testing.T) {
	ln := newScripted()
	ln.results <- result{err: errTransient}
	done := make(chan struct{})
	ch := run(ln, done, func(net.Conn) bool { t.Error("nothing to serve"); return true },
		func(error, time.Duration) { close(done) })
	if err := result1(t, ch); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if n := ln.accepts.Load(); n != 1 {
		t.Fatalf("%d Accepts, want 1: the loop went on after shutdown", n)
	}
}

// A listener closed under its owner (done still open) ends the loop with
// an error wrapping net.ErrClosed, without a retry.
func TestListenerClosedUnderOwner(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	retried := false
	ch := run(ln, make(chan struct{}), func(net.Conn) bool { return true }, func(error, time.Duration) { retried = true })
	ln.Close()
	if err := result1(t, ch); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Run = %v, want net.ErrClosed", err)
	}
	if retried {
		t.Fatal("a closed listener was retried")
	}
}

// A connection the owner refuses (serve false: it is shutting down) is
// closed, and the loop ends with nil.
func TestRefusedConnectionIsClosed(t *testing.T) {
	ln := newScripted()
	a, b := net.Pipe()
	defer b.Close()
	ln.results <- result{conn: a}
	ch := run(ln, make(chan struct{}), func(net.Conn) bool { return false }, nil)
	if err := result1(t, ch); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if _, err := b.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("peer of the refused conn read %v, want EOF (closed)", err)
	}
}
