package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/clover-kv/clover/api/cloverv1"
)

func newTestClient(t *testing.T, f *fakeNode, cfg Config) *Client {
	t.Helper()
	f.setRoutes(table("ks", 1, map[string]string{"a": f.addr}, []string{"a"}, "a"))
	cfg.Endpoints = []string{f.addr}
	cfg.Insecure = cfg.TLS == nil
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Concurrent requests share one stream, and each caller gets its own result.
func TestStreamCarriesConcurrentRequests(t *testing.T) {
	f := startFake(t)
	f.stream = f.serveStream
	f.put = func(r *pb.PutRequest) (*pb.PutResponse, error) {
		var v uint64
		fmt.Sscanf(string(r.Key), "k%d", &v)
		return &pb.PutResponse{Version: v}, nil
	}
	c := newTestClient(t, f, Config{})
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 1; i <= 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			v, err := c.Put(context.Background(), "ks", []byte(fmt.Sprintf("k%d", i)), []byte("v"))
			if err == nil && v != uint64(i) {
				err = fmt.Errorf("put k%d: got the result of another request (version %d)", i, v)
			}
			if err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := f.streamCount(); n != 1 {
		t.Fatalf("%d streams opened, want 1", n)
	}
	if n := f.kvCalls(); n != 200 {
		t.Fatalf("%d requests served, want 200", n)
	}
}

// A node without KV.Stream (an older version) is served by unary calls, and
// no request runs twice.
func TestStreamFallsBackToUnary(t *testing.T) {
	f := startFake(t)
	c := newTestClient(t, f, Config{})
	for i := 0; i < 3; i++ {
		if _, err := c.Put(context.Background(), "ks", []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if f.kvCalls() != 3 || f.streamCount() != 1 {
		t.Fatalf("%d calls on %d streams, want 3 calls and one stream attempt", f.kvCalls(), f.streamCount())
	}
}

// A stream that breaks after a request was sent leaves its outcome unknown:
// a put is not sent again (applied twice, it could undo a write made in
// between) and fails with ErrUnavailable and ErrOutcomeUnknown; a read is
// retried on a new stream.
func TestStreamBreakMidRequest(t *testing.T) {
	f := startFake(t)
	var mu sync.Mutex
	broken := 0
	f.stream = func(st pb.KV_StreamServer) error {
		mu.Lock()
		breakIt := broken < 1
		if breakIt {
			broken++
		}
		mu.Unlock()
		if breakIt {
			if _, err := st.Recv(); err != nil {
				return err
			}
			f.count() // as if the request ran, then the connection dropped
			return status.Error(codes.Unavailable, "connection reset")
		}
		return f.serveStream(st)
	}
	c := newTestClient(t, f, Config{Retry: RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}})
	_, err := c.Put(context.Background(), "ks", []byte("k"), []byte("v"))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("put across a broken stream: %v, want ErrUnavailable and ErrOutcomeUnknown", err)
	}
	if f.streamCount() != 1 {
		t.Fatalf("%d streams, want 1: a put of unknown outcome must not be sent again", f.streamCount())
	}
	mu.Lock()
	broken = 0
	mu.Unlock()
	// The fake answers every read with "not found": an answer, not a failure.
	if _, err := c.Get(context.Background(), "ks", []byte("k")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read across a broken stream: %v, want the node's answer (not found)", err)
	}
	if f.streamCount() != 3 {
		t.Fatalf("%d streams, want 3 (the put's, the read's broken one and its replacement)", f.streamCount())
	}

	mu.Lock()
	broken = 0
	mu.Unlock()
	// The client's stream is healthy; break the next one by closing the client's.
	c.connMu.Lock()
	for _, p := range c.pipes {
		p.mu.Lock()
		p.stream.fail(errors.New("test: drop the stream"))
		p.mu.Unlock()
	}
	c.connMu.Unlock()
	_, err = c.CompareAndSwap(context.Background(), "ks", []byte("k"), 1, []byte("w"))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("compare-and-swap across a broken stream: %v, want ErrUnavailable and ErrOutcomeUnknown", err)
	}
}

// A caller that gives up returns at once, and the client keeps working.
func TestStreamCallerCancels(t *testing.T) {
	f := startFake(t)
	release := make(chan struct{})
	arrived := make(chan struct{}, 1) // the first put reached the node
	f.stream = f.serveStream
	f.put = func(*pb.PutRequest) (*pb.PutResponse, error) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-release
		return &pb.PutResponse{Version: 1}, nil
	}
	c := newTestClient(t, f, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Put(ctx, "ks", []byte("k"), []byte("v"))
		done <- err
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the put never reached the node")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled put: %v", err)
	}
	close(release)
	if _, err := c.Put(context.Background(), "ks", []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
}
