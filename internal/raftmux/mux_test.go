package raftmux

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// exchange writes b on a raw TCP connection to m and returns everything the
// Mux answers until it closes the connection.
func exchange(t *testing.T, m testMux, b []byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("the Mux did not close the connection: %v (read %x)", err, got)
	}
	return got
}

func register(t *testing.T, m testMux, shard uint64, g Guard) raft.StreamLayer {
	t.Helper()
	sl, err := m.Register(shard, g)
	if err != nil {
		t.Fatal(err)
	}
	return sl
}

// roundTrip checks that bytes flow both ways between a dialed and an
// accepted connection.
func roundTrip(t *testing.T, out, in net.Conn) {
	t.Helper()
	for _, p := range []struct{ w, r net.Conn }{{out, in}, {in, out}} {
		if _, err := p.w.Write([]byte("raft")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(p.r, buf); err != nil || string(buf) != "raft" {
			t.Fatalf("read %q, %v", buf, err)
		}
	}
}

func TestDialAndAccept(t *testing.T) {
	a, b := newMux(t, Config{}), newMux(t, Config{})
	la := register(t, a, 1, AllowAll{})
	lb := register(t, b, 1, AllowAll{})
	out, err := la.Dial(b.addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = out.Close() }()
	roundTrip(t, out, mustAccept(t, lb))
	if la.Addr().String() != a.Addr().String() {
		t.Fatalf("layer Addr %v, want the Mux's %v", la.Addr(), a.Addr())
	}
}

func TestDialRefusedByGuardOpensNothing(t *testing.T) {
	a, b := newMux(t, Config{}), newMux(t, Config{})
	g := &testGuard{}
	g.denyTarget(b.addr())
	la := register(t, a, 1, g)
	register(t, b, 1, AllowAll{})

	_, err := la.Dial(b.addr(), time.Second)
	if !errors.Is(err, ErrResidency) || !errors.Is(err, errNotPermitted) {
		t.Fatalf("dial to a refused target = %v, want ErrResidency wrapping the guard's error", err)
	}
	if n := b.accepts.Load(); n != 0 {
		t.Fatalf("refused target accepted %d connections", n)
	}
}

func TestGuardRevokedOnOpenConn(t *testing.T) {
	a, b := newMux(t, Config{}), newMux(t, Config{})
	g := &testGuard{}
	la := register(t, a, 1, g)
	lb := register(t, b, 1, AllowAll{})
	out, err := la.Dial(b.addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	in := mustAccept(t, lb)
	roundTrip(t, out, in)

	g.denyTarget(b.addr())
	if _, err := out.Write([]byte("entry")); !errors.Is(err, ErrResidency) {
		t.Fatalf("write after the policy revoked the target = %v, want ErrResidency", err)
	}
	if err := in.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(in); err != nil || len(got) != 0 {
		t.Fatalf("target read %q, %v; want a clean close with no bytes", got, err)
	}
}

func TestAcceptGuardRefusal(t *testing.T) {
	a, b := newMux(t, Config{}), newMux(t, Config{})
	la := register(t, a, 1, AllowAll{})
	lb := register(t, b, 1, &testGuard{acceptErr: errors.New("node locality us-east outside the shard's policy")})

	_, err := la.Dial(b.addr(), time.Second)
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("dial = %v, want ErrRefused", err)
	}
	if !strings.Contains(err.Error(), "us-east outside the shard's policy") {
		t.Fatalf("refusal %q does not carry the guard's reason", err)
	}
	b.Unregister(1)
	if c, err := lb.Accept(); err == nil {
		t.Fatalf("a refused connection reached Accept: %v", c.RemoteAddr())
	}
}

func TestUnknownShard(t *testing.T) {
	a, b := newMux(t, Config{}), newMux(t, Config{})
	register(t, b, 1, AllowAll{})
	h := encodeHeader(protocolVersion, 42)
	if got := exchange(t, b, h[:]); !bytes.Equal(got, []byte{byte(statusUnknownShard)}) {
		t.Fatalf("unknown shard answered %x, want status 1 then close", got)
	}
	la := register(t, a, 42, AllowAll{})
	if _, err := la.Dial(b.addr(), time.Second); !errors.Is(err, ErrUnknownShard) {
		t.Fatalf("dial = %v, want ErrUnknownShard", err)
	}
}

func TestBadHeaderClosed(t *testing.T) {
	b := newMux(t, Config{})
	register(t, b, 1, AllowAll{})
	badMagic := encodeHeader(protocolVersion, 1)
	copy(badMagic[:], "HTTP")
	badVersion := encodeHeader(protocolVersion, 1)
	badVersion[len(magic)] = muxVersion + 1
	for name, h := range map[string][headerLen]byte{"magic": badMagic, "version": badVersion} {
		if got := exchange(t, b, h[:]); !bytes.Equal(got, []byte{byte(statusBadHeader)}) {
			t.Errorf("bad %s answered %x, want status 3 then close", name, got)
		}
	}
}

func TestHandshakeTimeoutClosesSilentConn(t *testing.T) {
	b := newMux(t, Config{HandshakeTimeout: 100 * time.Millisecond})
	register(t, b, 1, AllowAll{})
	start := time.Now()
	got := exchange(t, b, []byte("CLV")) // a truncated header, then silence
	if len(got) != 0 {
		t.Fatalf("silent peer got %x", got)
	}
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("closed after %v, before the handshake timeout", el)
	}
}

// A peer that connects and stays silent must not stall other connections:
// with a 10s handshake timeout on b, a dial bounded to 2s succeeds only if
// b's accept loop kept going.
func TestSilentPeerDoesNotStallAccepts(t *testing.T) {
	a := newMux(t, Config{HandshakeTimeout: 2 * time.Second})
	b := newMux(t, Config{HandshakeTimeout: 10 * time.Second})
	la := register(t, a, 1, AllowAll{})
	lb := register(t, b, 1, AllowAll{})
	silent, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = silent.Close() }()
	waitFor(t, 5*time.Second, "b to accept the silent conn", func() bool { return b.accepts.Load() == 1 })

	out, err := la.Dial(b.addr(), time.Second)
	if err != nil {
		t.Fatalf("dial while another peer is silent: %v", err)
	}
	defer func() { _ = out.Close() }()
	roundTrip(t, out, mustAccept(t, lb))
}

// A shard that never calls Accept must not hold up another shard.
func TestSlowShardDoesNotBlockOthers(t *testing.T) {
	a, b := newMux(t, Config{}), newMux(t, Config{})
	la1 := register(t, a, 1, AllowAll{})
	la2 := register(t, a, 2, AllowAll{})
	register(t, b, 1, AllowAll{}) // nobody accepts shard 1 on b
	lb2 := register(t, b, 2, AllowAll{})

	for range 3 {
		c, err := la1.Dial(b.addr(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
	}
	out, err := la2.Dial(b.addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = out.Close() }()
	roundTrip(t, out, mustAccept(t, lb2))
}

func TestUnregisterThenRegisterAgain(t *testing.T) {
	a, b := newMux(t, Config{}), newMux(t, Config{})
	la := register(t, a, 1, AllowAll{})
	old := register(t, b, 1, AllowAll{})
	out, err := la.Dial(b.addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	oldIn := mustAccept(t, old)

	b.Unregister(1)
	if _, err := old.Accept(); !errors.Is(err, ErrClosed) || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Unregister = %v, want ErrClosed", err)
	}
	if _, err := oldIn.Read(make([]byte, 1)); err == nil {
		t.Fatal("an unregistered shard's connection is still open")
	}
	_ = out.Close()
	if _, err := la.Dial(b.addr(), time.Second); !errors.Is(err, ErrUnknownShard) {
		t.Fatalf("dial after Unregister = %v, want ErrUnknownShard", err)
	}

	fresh := register(t, b, 1, AllowAll{})
	_ = old.Close() // closing the old layer must not unregister the new one
	out, err = la.Dial(b.addr(), time.Second)
	if err != nil {
		t.Fatalf("dial after re-register: %v", err)
	}
	defer func() { _ = out.Close() }()
	roundTrip(t, out, mustAccept(t, fresh))
}

func TestRegisterErrors(t *testing.T) {
	m := newMux(t, Config{})
	register(t, m, 1, AllowAll{})
	if _, err := m.Register(1, AllowAll{}); !errors.Is(err, ErrAlreadyRegistered) {
		t.Fatalf("second Register = %v, want ErrAlreadyRegistered", err)
	}
	if _, err := m.Register(2, nil); !errors.Is(err, ErrNilGuard) {
		t.Fatalf("Register(nil guard) = %v, want ErrNilGuard", err)
	}
}

func TestCloseClosesEverything(t *testing.T) {
	a, b := newMux(t, Config{}), newMux(t, Config{})
	la := register(t, a, 1, AllowAll{})
	lb := register(t, b, 1, AllowAll{})
	out, err := la.Dial(b.addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	in := mustAccept(t, lb)
	pending, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pending.Close() }()
	waitFor(t, 5*time.Second, "b to accept the pending conn", func() bool { return b.accepts.Load() == 2 })

	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := lb.Accept(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Accept after Close = %v", err)
	}
	if _, err := lb.Dial(a.addr(), time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("Dial after Close = %v", err)
	}
	if _, err := b.Register(2, AllowAll{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Register after Close = %v", err)
	}
	// b's own accepted conn is closed; the peers of b's conns read EOF.
	if _, err := in.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("accepted conn after Close: read = %v, want net.ErrClosed", err)
	}
	for name, c := range map[string]net.Conn{"in handshake": pending, "dialer's": out} {
		if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s conn still open after Close: %v", name, err)
		}
	}
	if _, err := la.Dial(b.addr(), time.Second); err == nil {
		t.Fatal("dial to a closed Mux succeeded")
	}
}

func TestPlaintextDialerRejectedByTLSMux(t *testing.T) {
	srv, _ := testTLS(t)
	a := newMux(t, Config{})
	b := newMux(t, Config{ServerTLS: srv, HandshakeTimeout: time.Second})
	la := register(t, a, 1, AllowAll{})
	register(t, b, 1, AllowAll{})
	if _, err := la.Dial(b.addr(), time.Second); err == nil {
		t.Fatal("plaintext dial to a TLS Mux succeeded")
	}
}

func TestAdvertise(t *testing.T) {
	adv := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 7001}
	m := newMux(t, Config{Advertise: adv})
	sl := register(t, m, 1, AllowAll{})
	if m.Addr() != net.Addr(adv) || sl.Addr() != net.Addr(adv) {
		t.Fatalf("Addr = %v / %v, want %v", m.Addr(), sl.Addr(), adv)
	}
}

// A listener closed under the Mux (not by Close) shuts the Mux down: it
// takes no more shards.
func TestListenerClosedUnderMuxShutsItDown(t *testing.T) {
	m := newMux(t, Config{})
	_ = m.ln.Close()
	waitFor(t, 5*time.Second, "the Mux to shut down", func() bool {
		_, err := m.Register(7, AllowAll{})
		return errors.Is(err, ErrClosed)
	})
}
