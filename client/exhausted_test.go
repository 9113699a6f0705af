package client

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/internal/errkind"
)

// exhausted is a node's refusal of a request over the caller's rate.
func exhausted() error {
	return errkind.Status(&pb.ErrorDetail{Kind: pb.ErrorDetail_KIND_RESOURCE_EXHAUSTED}, "over the request rate").Err()
}

// A request a node refused as over a limit was certainly not served: the
// client retries it, a write included, after a backoff, and the caller
// sees only the success once the node takes it.
func TestResourceExhaustedIsRetried(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			f := startFake(t)
			f.stream = f.serveStream
			var refusals atomic.Int32
			refusals.Store(3)
			f.put = func(*pb.PutRequest) (*pb.PutResponse, error) {
				if refusals.Add(-1) >= 0 {
					return nil, exhausted()
				}
				return &pb.PutResponse{Version: 7}, nil
			}
			cfg := m.cfg
			cfg.Retry = RetryPolicy{MaxAttempts: 8, InitialBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond}
			c := newTestClient(t, f, cfg)
			v, err := c.Put(context.Background(), "ks", []byte("k"), []byte("v"))
			if err != nil || v != 7 {
				t.Fatalf("put: version %d, %v; want version 7 after the refusals", v, err)
			}
			if n := f.kvCalls(); n != 4 {
				t.Fatalf("%d attempts, want 4 (3 refused, 1 served)", n)
			}
		})
	}
}

// A node that keeps refusing exhausts the retry budget: the caller gets
// ErrResourceExhausted, not an unknown outcome, after MaxAttempts.
func TestResourceExhaustedWithinBudget(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			f := startFake(t)
			f.stream = f.serveStream
			f.put = func(*pb.PutRequest) (*pb.PutResponse, error) { return nil, exhausted() }
			cfg := m.cfg
			cfg.Retry = RetryPolicy{MaxAttempts: 5, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
			c := newTestClient(t, f, cfg)
			_, err := c.Put(context.Background(), "ks", []byte("k"), []byte("v"))
			if !errors.Is(err, ErrResourceExhausted) || errors.Is(err, ErrOutcomeUnknown) {
				t.Fatalf("put: %v, want ErrResourceExhausted (and no unknown outcome)", err)
			}
			if n := f.kvCalls(); n != 5 {
				t.Fatalf("%d attempts, want MaxAttempts (5)", n)
			}
		})
	}
}
