package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/identity"
	"github.com/clover-kv/clover/internal/pki"
	"github.com/clover-kv/clover/placement"
)

// A caller's bucket lets a burst through at once and no more, however
// many goroutines ask together; callers do not share buckets.
func TestRateLimitBucketAllowsTheBurst(t *testing.T) {
	// One request an hour: nothing refills during the test.
	tab := newCallerTable(1.0/3600, 50)
	a, b := tab.get("a"), tab.get("b")
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if tab.allow(a) {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := allowed.Load(); n != 50 {
		t.Fatalf("%d of 800 concurrent requests allowed, want the burst of 50", n)
	}
	if !tab.allow(b) {
		t.Fatal("another caller was refused")
	}
	if tab.get("a") != a {
		t.Fatal("a caller got a second bucket")
	}
}

// A drained bucket refills at the rate: after the time of n requests, n
// more are allowed (checked on the bucket's own clock, not by sleeping).
func TestRateLimitBucketRefillsAtTheRate(t *testing.T) {
	tab := newCallerTable(1000, 10) // one token a millisecond
	b := &bucket{}
	now := int64(time.Hour)
	b.tat.Store(now)
	take := func(at int64) int {
		n := 0
		for tab.allowAt(b, at) {
			n++
		}
		return n
	}
	if n := take(now); n != 10 {
		t.Fatalf("full bucket gave %d, want 10", n)
	}
	if n := take(now + 3*int64(time.Millisecond)); n != 3 {
		t.Fatalf("3ms later: %d allowed, want 3", n)
	}
	if n := take(now + int64(time.Hour)); n != 10 {
		t.Fatalf("an hour later: %d allowed, want the burst of 10", n)
	}
}

// Idle callers leave the table, so it does not grow with every address
// ever seen; a bucket a stream holds stays; past the table's size new
// callers share one bucket.
func TestRateLimitTableForgetsIdleCallers(t *testing.T) {
	tab := newCallerTable(1e6, 1)
	held := tab.acquire("stream")
	tab.allow(tab.get("busy")) // empty for a microsecond
	tab.get("idle")
	tab.mu.Lock()
	tab.sweepLocked(tab.now() + int64(time.Second))
	tab.mu.Unlock()
	if _, ok := tab.buckets["idle"]; ok {
		t.Fatal("an idle caller was kept")
	}
	if tab.buckets["stream"] != held {
		t.Fatal("a bucket held by a stream was dropped")
	}
	tab.release(held)

	tab = newCallerTable(1e6, 1)
	tab.lastSweep = tab.now() + int64(time.Hour) // no sweep during the fill
	for i := range maxCallers {
		tab.get("ip" + strconv.Itoa(i))
	}
	if a, b := tab.get("new-1"), tab.get("new-2"); a != b || tab.size() != maxCallers+1 {
		t.Fatalf("past the table's size: new callers got their own buckets (size %d)", tab.size())
	}
}

// Callers are told apart by certificate identity in secure mode and by IP
// address (an IPv6 /64) in plaintext; nodes' requests are exempt: a node
// identity always, and without identities Internal calls and calls
// marked forwarded.
func TestCallerKeys(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.CreateCA(dir, "prod", 0); err != nil {
		t.Fatal(err)
	}
	u, err := pki.CreateUser(dir, "alice", []identity.Role{identity.RoleReader}, "IE", pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := pki.CreateNode(dir, "ie-1", placement.Locality{Country: "IE"}, []string{"127.0.0.1"}, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	user, node := u.Certificate, n.Certificate
	plain := &x509.Certificate{Raw: []byte("a certificate without an identity")}

	kv, internal := pb.KV_Put_FullMethodName, pb.Internal_NodeStatus_FullMethodName
	tcp := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000} }
	withCert := func(c *x509.Certificate) credentials.AuthInfo {
		return credentials.TLSInfo{State: tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{c}}}}
	}
	forwarded := metadata.NewIncomingContext(context.Background(), metadata.Pairs(forwardedKey, "1"))
	for _, tc := range []struct {
		name        string
		ctx         context.Context
		addr        net.Addr
		auth        credentials.AuthInfo
		method      string
		key         string
		exempt      bool
		trustDomain string
	}{
		{name: "plaintext v4", addr: tcp("10.1.2.3"), method: kv, key: "10.1.2.3"},
		{name: "plaintext v6 /64", addr: tcp("2001:db8:1:2:aaaa::1"), method: kv, key: "2001:db8:1:2::/64"},
		{name: "plaintext internal", addr: tcp("10.1.2.3"), method: internal, key: "10.1.2.3", exempt: true},
		{name: "plaintext forwarded", ctx: forwarded, addr: tcp("10.1.2.3"), method: kv, key: "10.1.2.3", exempt: true},
		{name: "user", addr: tcp("10.1.2.3"), auth: withCert(user), method: kv, key: "spiffe://prod/user/alice"},
		{name: "user forwarded", ctx: forwarded, addr: tcp("10.1.2.3"), auth: withCert(user), method: kv, key: "spiffe://prod/user/alice"},
		{name: "user internal", addr: tcp("10.1.2.3"), auth: withCert(user), method: internal, key: "spiffe://prod/user/alice"},
		{name: "node", addr: tcp("10.1.2.4"), auth: withCert(node), method: kv, key: "spiffe://prod/node/ie-1", exempt: true},
		{name: "user of the trust domain", addr: tcp("10.1.2.3"), auth: withCert(user), method: kv, key: "spiffe://prod/user/alice", trustDomain: "prod"},
		{name: "no identity", addr: tcp("10.1.2.3"), auth: withCert(plain), method: kv, key: "cert:"},
		{name: "no identity forwarded", ctx: forwarded, addr: tcp("10.1.2.3"), auth: withCert(plain), method: kv, key: "cert:", exempt: true},
		{name: "unverified", addr: tcp("10.1.2.3"), auth: credentials.TLSInfo{}, method: kv, key: "10.1.2.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			ctx = peer.NewContext(ctx, &peer.Peer{Addr: tc.addr, AuthInfo: tc.auth})
			key, exempt := PeerCaller(tc.trustDomain)(ctx, tc.method)
			if key != tc.key && !(tc.key == "cert:" && len(key) == len("cert:")+32 && key[:5] == "cert:") {
				t.Errorf("key %q, want %q", key, tc.key)
			}
			if exempt != tc.exempt {
				t.Errorf("exempt %v, want %v", exempt, tc.exempt)
			}
		})
	}
}
