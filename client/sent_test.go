package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/internal/testcerts"
)

// modes are the two ways a single-key request travels.
var modes = []struct {
	name string
	cfg  Config
}{{"stream", Config{}}, {"unary", Config{Unary: true}}}

// A write that reached its node has an unknown outcome when it fails with
// Unavailable, whatever the message says: even one that reads like gRPC's
// own words for a connection that never came up is not taken for proof
// that nothing was sent. The write is not sent again.
func TestWriteThatReachedANodeIsNotResentWhateverItsMessage(t *testing.T) {
	messages := []string{
		`connection error: desc = "transport: Error while dialing: dial tcp 10.0.0.9:7400: connect: connection refused"`,
		`connection error: desc = "error reading server preface: EOF"`,
		"not sent: stream broke",
		"node stopped while applying",
	}
	for _, m := range modes {
		for _, msg := range messages {
			t.Run(fmt.Sprintf("%s/%s", m.name, msg), func(t *testing.T) {
				f := startFake(t)
				f.stream = f.serveStream
				f.put = func(*pb.PutRequest) (*pb.PutResponse, error) {
					return nil, status.Error(codes.Unavailable, msg)
				}
				cfg := m.cfg
				cfg.Retry = RetryPolicy{MaxAttempts: 4, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
				c := newTestClient(t, f, cfg)
				_, err := c.Put(context.Background(), "ks", []byte("k"), []byte("v"))
				if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, ErrUnavailable) {
					t.Fatalf("put: %v, want ErrOutcomeUnknown and ErrUnavailable", err)
				}
				if n := f.kvCalls(); n != 1 {
					t.Fatalf("the node ran the put %d times, want once", n)
				}
			})
		}
	}
}

// deadEndpoint returns the address of a listener that accepts connections
// and closes them at once, as a host whose node is gone but whose port
// still answers (a proxy, a load balancer, a restarting process).
func deadEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// refusedEndpoint returns a loopback address nothing listens on.
func refusedEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// mutualTLS returns the server option and client config of a fresh CA.
func mutualTLS(t *testing.T) (grpc.ServerOption, *tls.Config) {
	ca := testcerts.NewCA(t, "clover-test")
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	srv := &tls.Config{Certificates: []tls.Certificate{ca.Pair(t, "node")}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}
	cli := &tls.Config{Certificates: []tls.Certificate{ca.Pair(t, "client")}, RootCAs: pool, MinVersion: tls.VersionTLS13}
	return grpc.Creds(credentials.NewTLS(srv)), cli
}

// A write routed to a node the client cannot reach is certainly not sent,
// so it goes to another replica, which answers, whatever words gRPC uses
// for the failure (a refused connection, a connection closed before the
// HTTP/2 preface, or before the TLS handshake completed).
func TestWriteToUnreachableNodeGoesElsewhere(t *testing.T) {
	for _, m := range modes {
		for _, tc := range []struct {
			name string
			dead func(*testing.T) string
			tls  bool
		}{
			{"refused", refusedEndpoint, false},
			{"closed before the preface", deadEndpoint, false},
			{"closed during the TLS handshake", deadEndpoint, true},
		} {
			t.Run(m.name+"/"+tc.name, func(t *testing.T) {
				cfg := m.cfg
				var opts []grpc.ServerOption
				if tc.tls {
					var opt grpc.ServerOption
					opt, cfg.TLS = mutualTLS(t)
					opts = append(opts, opt)
				}
				b := startFake(t, opts...)
				b.stream = b.serveStream
				b.put = func(*pb.PutRequest) (*pb.PutResponse, error) { return &pb.PutResponse{Version: 7}, nil }
				dead := tc.dead(t)
				b.setRoutes(table("ks", 1, map[string]string{"a": dead, "b": b.addr}, []string{"a", "b"}, "a"))
				cfg.Endpoints = []string{b.addr}
				cfg.Insecure = cfg.TLS == nil
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				c, err := New(ctx, cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				v, err := c.Put(ctx, "ks", []byte("k"), []byte("v"))
				if err != nil || v != 7 {
					t.Fatalf("put with the leader unreachable: version %d, %v; want the other replica's answer", v, err)
				}
				if n := b.kvCalls(); n != 1 {
					t.Fatalf("the reachable node ran the put %d times, want once", n)
				}
			})
		}
	}
}
