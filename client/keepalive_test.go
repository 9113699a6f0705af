package client

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/connectivity"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/internal/faultnet"
)

// A leader that stops answering without closing its connection (paused,
// or cut off by a network that drops its packets) is noticed by keepalive
// long before the requests' deadline: a read waiting on it is answered by
// another replica, a write waiting on it fails with an unknown outcome
// (and is not sent elsewhere), and a write made afterwards goes to the
// other replica.
func TestKeepaliveNoticesSilentNode(t *testing.T) {
	a, b := startFake(t), startFake(t)
	a.stream, b.stream = a.serveStream, b.serveStream
	var putsOnB atomic.Int32
	b.put = func(*pb.PutRequest) (*pb.PutResponse, error) {
		putsOnB.Add(1)
		return &pb.PutResponse{Version: 2}, nil
	}
	routes := table("ks", 1, map[string]string{"a": a.addr, "b": b.addr}, []string{"a", "b"}, "a")
	a.setRoutes(routes)
	b.setRoutes(routes)
	n := faultnet.New()
	n.Register("a", a.addr)
	n.Register("b", b.addr)

	// Every request here waits far longer than keepalive needs: an outcome
	// other than a deadline shows keepalive ended the wait.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := New(ctx, Config{Insecure: true, Endpoints: []string{b.addr}, Dial: n.Dialer("client"),
		KeepaliveTime: 10 * time.Second, KeepaliveTimeout: time.Second, ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, err := c.Put(ctx, "ks", []byte("k"), []byte("v")); err != nil || v != 1 {
		t.Fatalf("put to the leader: version %d, %v", v, err)
	}

	n.DropOneWay("a", "client")
	n.DropOneWay("client", "a")
	putErr := make(chan error, 1)
	go func() {
		_, err := c.Put(ctx, "ks", []byte("k"), []byte("w"))
		putErr <- err
	}()
	if _, err := c.Get(ctx, "ks", []byte("k")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read while the leader is silent: %v, want the other replica's answer (not found)", err)
	}
	err = <-putErr
	if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("write in flight to the silent leader: %v, want ErrOutcomeUnknown and ErrUnavailable", err)
	}
	if k := putsOnB.Load(); k != 0 {
		t.Fatalf("a write of unknown outcome was sent to the other replica (%d times)", k)
	}
	if v, err := c.Put(ctx, "ks", []byte("k2"), []byte("v")); err != nil || v != 2 {
		t.Fatalf("write after the silent leader was noticed: version %d, %v; want the other replica's answer", v, err)
	}
}

// A request for a node whose connection is still being set up waits no
// longer than its own deadline, and neither do the requests queued behind
// it for the same node.
func TestCallerDeadlineBoundsConnect(t *testing.T) {
	a := startFake(t)
	a.stream = a.serveStream
	a.setRoutes(table("ks", 1, map[string]string{"a": a.addr}, []string{"a"}, "a"))
	n := faultnet.New()
	n.Register("a", a.addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := New(ctx, Config{Insecure: true, Endpoints: []string{a.addr}, Dial: n.Dialer("client"), ConnectTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The routing table came over a unary call; the node's stream is not
	// open yet. From now on the node's bytes vanish: a new connection
	// never completes its handshake.
	n.DropOneWay("a", "client")
	c.connMu.Lock()
	for _, cc := range c.conns {
		cc.Close()
	}
	clear(c.conns)
	c.connMu.Unlock()

	errs := make(chan error, 3)
	for i := range 3 {
		go func() {
			pctx, cancel := context.WithTimeout(ctx, time.Duration(i+1)*100*time.Millisecond)
			defer cancel()
			_, err := c.Put(pctx, "ks", []byte("k"), []byte("v"))
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("put to a node still connecting: %v, want its own deadline", err)
		}
	}
	cc, err := c.conn(a.addr)
	if err != nil {
		t.Fatal(err)
	}
	if s := cc.GetState(); s != connectivity.Connecting {
		t.Fatalf("the puts returned once the connection was %v: they waited for the connection attempt, not their deadline", s)
	}
}

func TestConfigValidation(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []Config{
		{Insecure: true, Endpoints: []string{"127.0.0.1:1"}, KeepaliveTime: 2 * time.Second},
		{Insecure: true, Endpoints: []string{"127.0.0.1:1"}, KeepaliveTimeout: -time.Second},
		{Insecure: true, Endpoints: []string{"127.0.0.1:1"}, ConnectTimeout: -time.Second},
	} {
		if _, err := New(ctx, cfg); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("New(%+v): %v, want ErrInvalidArgument", cfg, err)
		}
	}
	if _, err := New(ctx, Config{}); !errors.Is(err, ErrNoEndpoints) {
		t.Errorf("New without endpoints: %v", err)
	}
	// Secure by default: plaintext only when asked for.
	if _, err := New(ctx, Config{Endpoints: []string{"127.0.0.1:1"}}); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "Insecure") {
		t.Errorf("New without TLS or Insecure: %v, want ErrInvalidArgument naming Insecure", err)
	}
	if _, err := New(ctx, Config{Endpoints: []string{"127.0.0.1:1"}, Insecure: true, TLS: &tls.Config{}}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("New with TLS and Insecure: %v, want ErrInvalidArgument", err)
	}
}
