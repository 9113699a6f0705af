package gossiptls

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// recvPacket returns the next packet of tr, failing the test after 5s.
func recvPacket(t *testing.T, tr *Transport) *memberlist.Packet {
	t.Helper()
	select {
	case p := <-tr.PacketCh():
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no packet arrived")
		return nil
	}
}

// recvStream returns the next inbound stream of tr, failing the test after 5s.
func recvStream(t *testing.T, tr *Transport) net.Conn {
	t.Helper()
	select {
	case c := <-tr.StreamCh():
		t.Cleanup(func() { _ = c.Close() })
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no stream arrived")
		return nil
	}
}

func TestPacketsArriveInOrderOverOneConnection(t *testing.T) {
	ca := newCA(t, "ca")
	a := newTransport(t, ca, "a", nil)
	b := newTransport(t, ca, "b", nil)
	to := b.Addr().String()

	const n = packetQueueLen // a full queue, none dropped
	before := time.Now()
	for i := range n {
		msg := []byte("packet-" + strconv.Itoa(i))
		if _, err := a.WriteTo(msg, to); err != nil {
			t.Fatalf("WriteTo %d: %v", i, err)
		}
		msg[0] = 'X' // the transport must have copied the packet
	}
	for i := range n {
		p := recvPacket(t, b)
		if want := "packet-" + strconv.Itoa(i); string(p.Buf) != want {
			t.Fatalf("packet %d = %q, want %q", i, p.Buf, want)
		}
		from, ok := p.From.(*net.TCPAddr)
		if !ok || !from.IP.Equal(net.IPv4(127, 0, 0, 1)) {
			t.Fatalf("From = %v, want a 127.0.0.1 TCP address", p.From)
		}
		if p.Timestamp.Before(before) || p.Timestamp.After(time.Now()) {
			t.Fatalf("Timestamp %v outside the test's window", p.Timestamp)
		}
	}
	if st := b.Stats(); st.PacketsReceived != n || st.ConnsRejected != 0 {
		t.Fatalf("receiver stats = %+v, want %d received and none rejected", st, n)
	}
	b.mu.Lock()
	conns := len(b.conns)
	b.mu.Unlock()
	if conns != 1 {
		t.Fatalf("receiver holds %d connections, want 1 (packets share a connection)", conns)
	}
	if st := a.Stats(); st.PacketsDropped != 0 {
		t.Fatalf("sender dropped %d packets", st.PacketsDropped)
	}
}

func TestFullQueueDropsAndCounts(t *testing.T) {
	ca := newCA(t, "ca")
	a := newTransport(t, ca, "a", nil)
	b := newTransport(t, ca, "b", nil)
	to := b.Addr().String()

	const n = 20 * packetQueueLen
	for i := range n {
		if _, err := a.WriteTo(binary.BigEndian.AppendUint32(nil, uint32(i)), to); err != nil {
			t.Fatalf("WriteTo %d: %v", i, err)
		}
	}
	// Nothing fails to dial or write here, so every drop was counted by
	// WriteTo and the rest arrive, in order.
	dropped := a.Stats().PacketsDropped
	if dropped == 0 {
		t.Fatalf("%d packets in a burst overflowed no queue of %d", n, packetQueueLen)
	}
	last := -1
	for range n - int(dropped) {
		p := recvPacket(t, b)
		i := int(binary.BigEndian.Uint32(p.Buf))
		if i <= last {
			t.Fatalf("packet %d after %d", i, last)
		}
		last = i
	}
}

func TestPacketSizeLimits(t *testing.T) {
	ca := newCA(t, "ca")
	a := newTransport(t, ca, "a", nil)
	b := newTransport(t, ca, "b", nil)
	to := b.Addr().String()

	for _, size := range []int{0, MaxPacketSize + 1} {
		if _, err := a.WriteTo(make([]byte, size), to); !errors.Is(err, ErrPacketSize) {
			t.Errorf("WriteTo of %d bytes: err = %v, want ErrPacketSize", size, err)
		}
	}
	big := bytes.Repeat([]byte{0xa5}, MaxPacketSize)
	if _, err := a.WriteTo(big, to); err != nil {
		t.Fatalf("WriteTo of MaxPacketSize bytes: %v", err)
	}
	if p := recvPacket(t, b); !bytes.Equal(p.Buf, big) {
		t.Fatalf("largest packet arrived with %d bytes, altered", len(p.Buf))
	}
}

func TestStreamCarriesBothWaysAndReportsPeer(t *testing.T) {
	ca := newCA(t, "ca")
	a := newTransport(t, ca, "node-a", nil)
	b := newTransport(t, ca, "node-b", nil)

	out, err := a.DialAddressTimeout(memberlist.Address{Addr: b.Addr().String(), Name: "node-b"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	in := recvStream(t, b)

	if _, err := out.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(in, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v; want ping", buf, err)
	}
	if _, err := in.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("read %q, %v; want pong", buf, err)
	}
	for c, want := range map[net.Conn]string{in: "node-a", out: "node-b"} {
		cs, ok := c.(interface{ ConnectionState() tls.ConnectionState })
		if !ok {
			t.Fatalf("%T has no ConnectionState", c)
		}
		peers := cs.ConnectionState().PeerCertificates
		if len(peers) == 0 || peers[0].Subject.CommonName != want {
			t.Fatalf("peer certificate of %T = %v, want CN %s", c, peers, want)
		}
	}
	_ = out.Close()
	if _, err := in.Read(buf); err == nil {
		t.Fatal("inbound stream still readable after the dialer closed it")
	}
}

func TestFinalAdvertiseAddr(t *testing.T) {
	ca := newCA(t, "ca")
	plain := newTransport(t, ca, "a", nil)
	bound := plain.Addr().(*net.TCPAddr).Port
	adv := newTransport(t, ca, "b", func(c *Config) { c.Advertise = "10.1.2.3:7000" })
	advPort0 := newTransport(t, ca, "c", func(c *Config) { c.Advertise = "10.1.2.3:0" })
	any := newTransport(t, ca, "d", func(c *Config) { c.BindAddr = "0.0.0.0:0" })
	anyBound := any.Addr().(*net.TCPAddr).Port
	advBound := advPort0.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name     string
		tr       *Transport
		ip       string
		port     int
		wantIP   string
		wantPort int
		wantErr  error
	}{
		{"bound address", plain, "", 7946, "127.0.0.1", bound, nil},
		{"config advertise", adv, "", 7946, "10.1.2.3", 7000, nil},
		{"config advertise port 0", advPort0, "", 0, "10.1.2.3", advBound, nil},
		{"memberlist advertise wins", adv, "192.168.1.9", 9000, "192.168.1.9", 9000, nil},
		{"memberlist ip with port 0", adv, "192.168.1.9", 0, "192.168.1.9", 7000, nil},
		{"unspecified bind needs advertise", any, "", 7946, "", 0, ErrNoAdvertise},
		{"unspecified bind with memberlist advertise", any, "192.168.1.9", 0, "192.168.1.9", anyBound, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ip, port, err := tc.tr.FinalAdvertiseAddr(tc.ip, tc.port)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ip.String() != tc.wantIP || port != tc.wantPort {
				t.Fatalf("got %s:%d, want %s:%d", ip, port, tc.wantIP, tc.wantPort)
			}
			if len(ip) != net.IPv4len {
				t.Fatalf("IPv4 address returned in %d-byte form", len(ip))
			}
		})
	}
	if _, _, err := plain.FinalAdvertiseAddr("not-an-ip", 1); err == nil {
		t.Fatal("FinalAdvertiseAddr accepted a host name")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	ca := newCA(t, "ca")
	srv, cli := nodeTLS(t, ca, "a")
	good := Config{BindAddr: "127.0.0.1:0", ServerTLS: srv, ClientTLS: cli}
	tests := map[string]func(*Config){
		"no bind address":         func(c *Config) { c.BindAddr = "" },
		"bind without port":       func(c *Config) { c.BindAddr = "127.0.0.1" },
		"no server TLS":           func(c *Config) { c.ServerTLS = nil },
		"no client TLS":           func(c *Config) { c.ClientTLS = nil },
		"client TLS without cert": func(c *Config) { c.ClientTLS = &tls.Config{RootCAs: cli.RootCAs} },
		"advertise host name":     func(c *Config) { c.Advertise = "node1.example:7600" },
		"advertise unspecified":   func(c *Config) { c.Advertise = "0.0.0.0:7600" },
		"advertise bad port":      func(c *Config) { c.Advertise = "10.0.0.1:70000" },
	}
	for name, mod := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := good
			mod(&cfg)
			tr, err := New(cfg)
			if !errors.Is(err, ErrConfig) {
				if tr != nil {
					_ = tr.Shutdown()
				}
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
}

// expectClosedByPeer reads from c, and then from its raw connection if c is
// a TLS connection over raw, until the peer closes; it fails the test if the
// peer does not close within 5s.
func expectClosedByPeer(t *testing.T, c io.Reader, raw net.Conn) {
	t.Helper()
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1024)
	for _, r := range []io.Reader{c, raw} {
		var err error
		for err == nil {
			_, err = r.Read(buf)
		}
		if isTimeout(err) {
			t.Fatal("peer did not close the connection")
		}
	}
}

func TestGarbageClosesTheConnectionOnly(t *testing.T) {
	ca := newCA(t, "ca")
	other := newCA(t, "other")
	b := newTransport(t, ca, "b", func(c *Config) { c.Timeout = 300 * time.Millisecond })
	a := newTransport(t, ca, "a", nil)
	addr := b.Addr().String()

	_, goodCli := nodeTLS(t, ca, "mallory")
	_, foreignCli := tlsConfigs(other.Pair(t, "foreign"), ca)
	noCert := &tls.Config{RootCAs: goodCli.RootCAs, MinVersion: tls.VersionTLS13}

	frame := func(prefix []byte, length uint32, body []byte) []byte {
		out := append([]byte(nil), prefix...)
		out = binary.BigEndian.AppendUint32(out, length)
		return append(out, body...)
	}
	cases := []struct {
		name string
		tls  *tls.Config // nil: no TLS
		send []byte
	}{
		{"plaintext garbage", nil, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"silence", nil, nil},
		{"half a TLS record", nil, []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}},
		{"client certificate of another CA", foreignCli, []byte{typePacket}},
		{"no client certificate", noCert, []byte{typePacket}},
		{"unknown type byte", goodCli, []byte{'x', 1, 2, 3}},
		{"TLS then silence", goodCli, nil},
		{"zero length", goodCli, frame([]byte{typePacket}, 0, nil)},
		{"oversized length", goodCli, frame([]byte{typePacket}, MaxPacketSize+1, nil)},
		{"huge length", goodCli, frame([]byte{typePacket}, 0xffffffff, nil)},
		{"truncated packet", goodCli, frame([]byte{typePacket}, 100, []byte("short"))},
		{"truncated length", goodCli, []byte{typePacket, 0, 0}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			var c io.ReadWriter = raw
			if tc.tls != nil {
				cfg := tc.tls.Clone()
				cfg.ServerName = "127.0.0.1"
				tc := tls.Client(raw, cfg)
				if err := tc.Handshake(); err != nil {
					t.Fatalf("client handshake: %v", err)
				}
				c = tc
			}
			if len(tc.send) > 0 {
				if _, err := c.Write(tc.send); err != nil {
					t.Fatal(err)
				}
			}
			expectClosedByPeer(t, c, raw)
			if got := b.Stats().ConnsRejected; got != uint64(i+1) {
				t.Fatalf("ConnsRejected = %d, want %d", got, i+1)
			}
		})
	}

	// A good packet still gets through, and no garbage reached PacketCh.
	if _, err := a.WriteTo([]byte("still here"), addr); err != nil {
		t.Fatal(err)
	}
	if p := recvPacket(t, b); string(p.Buf) != "still here" {
		t.Fatalf("got packet %q, want the good one", p.Buf)
	}
	if got := b.Stats().PacketsReceived; got != 1 {
		t.Fatalf("PacketsReceived = %d, want 1", got)
	}
}

func TestReadFrame(t *testing.T) {
	cases := []struct {
		name    string
		in      []byte
		want    string
		wantErr error
	}{
		{"packet", binary.BigEndian.AppendUint32(nil, 3), "", ErrProtocol}, // body missing
		{"clean end", nil, "", errIdle},
		{"whole", append(binary.BigEndian.AppendUint32(nil, 3), "abc"...), "abc", nil},
		{"zero", binary.BigEndian.AppendUint32(nil, 0), "", ErrPacketSize},
		{"too big", binary.BigEndian.AppendUint32(nil, MaxPacketSize+1), "", ErrPacketSize},
		{"short length", []byte{0, 0}, "", ErrProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c1, c2 := net.Pipe()
			defer c1.Close()
			go func() {
				_, _ = c2.Write(tc.in)
				_ = c2.Close()
			}()
			got, err := readFrame(c1, time.Second, time.Second)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestPeerRestartIsRedialled(t *testing.T) {
	ca := newCA(t, "ca")
	a := newTransport(t, ca, "a", nil)
	b := newTransport(t, ca, "b", nil)
	addr := b.Addr().String()
	if _, err := a.WriteTo([]byte("one"), addr); err != nil {
		t.Fatal(err)
	}
	recvPacket(t, b)
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	b2 := newTransport(t, ca, "b", func(c *Config) { c.BindAddr = addr })

	// The old connection is gone; a later packet must reach the new
	// listener over a new connection. Packets sent before the sender
	// notices the close may be lost, as over UDP, so keep sending.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for i := 0; ; i++ {
		if _, err := a.WriteTo([]byte(fmt.Sprint("two-", i)), addr); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-b2.PacketCh():
			if !bytes.HasPrefix(p.Buf, []byte("two-")) {
				t.Fatalf("got %q", p.Buf)
			}
			return
		case <-tick.C:
		case <-deadline:
			t.Fatal("no packet reached the restarted peer")
		}
	}
}

func TestShutdownUnblocksEverything(t *testing.T) {
	ca := newCA(t, "ca")
	// A tarpit accepts TCP connections and never answers the TLS handshake.
	tarpit, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tarpit.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := tarpit.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		for {
			select {
			case c := <-accepted:
				_ = c.Close()
			default:
				return
			}
		}
	}()
	nextTarpitConn := func() net.Conn {
		select {
		case c := <-accepted:
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("nothing dialed the tarpit")
			return nil
		}
	}

	long := func(c *Config) { c.Timeout = time.Minute }
	a := newTransport(t, ca, "a", long)
	b := newTransport(t, ca, "b", long)

	// A stream dial stuck in its handshake.
	dialErr := make(chan error, 1)
	go func() {
		_, err := a.DialTimeout(tarpit.Addr().String(), time.Minute)
		dialErr <- err
	}()
	defer nextTarpitConn().Close()
	// A packet sender stuck in its handshake.
	if _, err := a.WriteTo([]byte("lost"), tarpit.Addr().String()); err != nil {
		t.Fatal(err)
	}
	defer nextTarpitConn().Close()
	// An inbound packet and an inbound stream nobody receives.
	if _, err := a.WriteTo([]byte("unread"), b.Addr().String()); err != nil {
		t.Fatal(err)
	}
	blockedStream, err := a.DialTimeout(b.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer blockedStream.Close()
	// A stream memberlist would hold.
	held, err := b.DialTimeout(a.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	heldIn := recvStream(t, a)

	for _, tr := range []*Transport{a, b} {
		done := make(chan error, 1)
		go func() { done <- tr.Shutdown() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Shutdown blocked")
		}
	}
	select {
	case err := <-dialErr:
		if !errors.Is(err, ErrClosed) || !errors.Is(err, net.ErrClosed) {
			t.Fatalf("stuck dial returned %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stuck dial not aborted by Shutdown")
	}
	_ = heldIn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := heldIn.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("stream handed out before Shutdown still open: %v", err)
	}
	if _, err := a.WriteTo([]byte("x"), b.Addr().String()); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteTo after Shutdown: %v, want ErrClosed", err)
	}
	if _, err := a.DialTimeout(b.Addr().String(), time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("DialTimeout after Shutdown: %v, want ErrClosed", err)
	}
	if err := a.Shutdown(); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestClientCertificateAlwaysRequired(t *testing.T) {
	ca := newCA(t, "ca")
	b := newTransport(t, ca, "b", func(c *Config) {
		c.ServerTLS = c.ServerTLS.Clone()
		c.ServerTLS.ClientAuth = tls.NoClientCert
	})
	_, cli := nodeTLS(t, ca, "anonymous")
	cli.Certificates = nil
	cli.ServerName = "127.0.0.1"
	raw, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tc := tls.Client(raw, cli)
	if err := tc.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if _, err := tc.Write([]byte{typePacket}); err != nil {
		t.Fatal(err)
	}
	expectClosedByPeer(t, tc, raw)
	if got := b.Stats().ConnsRejected; got != 1 {
		t.Fatalf("ConnsRejected = %d, want 1", got)
	}
}

func TestShutdownFlushesQueuedPackets(t *testing.T) {
	ca := newCA(t, "ca")
	b := newTransport(t, ca, "b", nil)
	c := newTransport(t, ca, "c", nil)

	// To b no connection is open yet: Shutdown must let the sender dial.
	// To c one is open: what is queued behind it must go out.
	a := newTransport(t, ca, "a", nil)
	if _, err := a.WriteTo([]byte("warm-up"), c.Addr().String()); err != nil {
		t.Fatal(err)
	}
	recvPacket(t, c)
	if _, err := a.WriteTo([]byte("bye"), b.Addr().String()); err != nil {
		t.Fatal(err)
	}
	const n = 10
	for i := range n {
		if _, err := a.WriteTo([]byte(strconv.Itoa(i)), c.Addr().String()); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if p := recvPacket(t, b); string(p.Buf) != "bye" {
		t.Fatalf("b got %q", p.Buf)
	}
	for i := range n {
		if p := recvPacket(t, c); string(p.Buf) != strconv.Itoa(i) {
			t.Fatalf("c got %q, want %d", p.Buf, i)
		}
	}
}

func TestFlushOnShutdownWritesTheQueue(t *testing.T) {
	ca := newCA(t, "ca")
	a := newTransport(t, ca, "a", nil)
	b := newTransport(t, ca, "b", nil)
	to := b.Addr().String()
	a.mu.Lock()
	a.flushDeadline = time.Now().Add(5 * time.Second)
	a.mu.Unlock()

	for _, open := range []bool{false, true} {
		p := &peer{addr: to, tls: a.clientTLSFor(to), q: make(chan []byte, packetQueueLen)}
		var pc *packetConn
		if open {
			var err error
			if pc, err = a.dialPacket(p, time.Now().Add(5*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		p.q <- []byte("x")
		p.q <- []byte("y")
		a.flushOnShutdown(p, pc)
		for _, want := range []string{"x", "y"} {
			if got := recvPacket(t, b); string(got.Buf) != want {
				t.Fatalf("open=%v: got %q, want %q", open, got.Buf, want)
			}
		}
		a.mu.Lock()
		left := len(a.conns)
		a.mu.Unlock()
		if left != 0 {
			t.Fatalf("open=%v: %d connections left open after the flush", open, left)
		}
	}
}
