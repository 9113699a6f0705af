package gossiptls

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/clover-kv/clover/internal/frontdoor"
)

// Transport is a memberlist.NodeAwareTransport that carries packets and
// streams over mutually authenticated TLS on one TCP listener. Create it with
// New, hand it to memberlist through memberlist.Config.Transport, and let
// memberlist call Shutdown.
type Transport struct {
	cfg       Config
	serverTLS *tls.Config
	ln        net.Listener
	logger    *slog.Logger
	dialer    net.Dialer

	advertise *net.TCPAddr // nil when advErr is set
	advErr    error

	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	pending  chan struct{} // one slot per inbound connection still in its handshake

	ctx        context.Context // cancelled when Shutdown starts: aborts stream dials
	cancel     context.CancelFunc
	sendCtx    context.Context // cancelled when Shutdown stops flushing: aborts packet dials
	sendCancel context.CancelFunc
	done       chan struct{} // closed when Shutdown starts

	mu            sync.Mutex
	closed        bool              // Shutdown has started
	swept         bool              // Shutdown has closed every connection
	flushDeadline time.Time         // set before done is closed
	conns         map[net.Conn]bool // raw TCP connections; true for outbound packet ones
	peers         map[string]*peer  // outbound packet senders by address
	senders       sync.WaitGroup    // runPeer goroutines
	wg            sync.WaitGroup    // every other goroutine

	stats struct {
		sent, received, dropped, rejected atomic.Uint64
	}
}

var _ memberlist.NodeAwareTransport = (*Transport)(nil)

// Stats counts what a Transport did since New.
type Stats struct {
	// PacketsSent is the number of packets written to a peer's connection.
	PacketsSent uint64
	// PacketsReceived is the number of well-formed packets read, each handed
	// to PacketCh unless Shutdown came first.
	PacketsReceived uint64
	// PacketsDropped is the number of packets WriteTo accepted but never
	// wrote: the peer's queue was full, or its dial or write failed.
	PacketsDropped uint64
	// ConnsRejected is the number of inbound connections closed for a failed
	// TLS handshake, a bad type byte or a malformed packet.
	ConnsRejected uint64
}

// New listens on cfg.BindAddr and starts accepting connections. The caller
// hands the Transport to memberlist, whose Shutdown shuts it down; call
// Shutdown directly only if memberlist.Create fails or is never called.
func New(cfg Config) (*Transport, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("gossiptls: listen %s: %w", cfg.BindAddr, err)
	}
	if cfg.MaxConns > 0 {
		ln = frontdoor.Wrap(ln, frontdoor.Config{Name: "gossip", MaxConns: cfg.MaxConns,
			FirstByteTimeout: cfg.Timeout, Logger: cfg.Logger})
	}
	srv := cfg.ServerTLS.Clone()
	srv.ClientAuth = tls.RequireAndVerifyClientCert
	ctx, cancel := context.WithCancel(context.Background())
	sendCtx, sendCancel := context.WithCancel(context.Background())
	t := &Transport{
		cfg:        cfg,
		serverTLS:  srv,
		ln:         ln,
		logger:     cfg.Logger,
		packetCh:   make(chan *memberlist.Packet),
		streamCh:   make(chan net.Conn),
		pending:    make(chan struct{}, maxPendingHandshakes),
		ctx:        ctx,
		cancel:     cancel,
		sendCtx:    sendCtx,
		sendCancel: sendCancel,
		done:       make(chan struct{}),
		conns:      make(map[net.Conn]bool),
		peers:      make(map[string]*peer),
	}
	t.advertise, t.advErr = advertiseAddr(cfg.Advertise, ln.Addr().(*net.TCPAddr))
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

// advertiseAddr is the address to advertise when memberlist configures none.
func advertiseAddr(configured string, bound *net.TCPAddr) (*net.TCPAddr, error) {
	if configured != "" {
		a, err := parseAdvertise(configured)
		if err != nil {
			return nil, err
		}
		if a.Port == 0 {
			a.Port = bound.Port
		}
		return a, nil
	}
	if bound.IP.IsUnspecified() {
		return nil, fmt.Errorf("%w: bound to %s; set Advertise", ErrNoAdvertise, bound)
	}
	ip := bound.IP
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	return &net.TCPAddr{IP: ip, Port: bound.Port}, nil
}

// Addr returns the address the listener is bound to.
func (t *Transport) Addr() net.Addr { return t.ln.Addr() }

// Stats returns the transport's counters.
func (t *Transport) Stats() Stats {
	return Stats{
		PacketsSent:     t.stats.sent.Load(),
		PacketsReceived: t.stats.received.Load(),
		PacketsDropped:  t.stats.dropped.Load(),
		ConnsRejected:   t.stats.rejected.Load(),
	}
}

// FinalAdvertiseAddr implements memberlist.Transport. An ip memberlist was
// configured with (Config.AdvertiseAddr) wins, with its port, or the
// transport's own advertised port when that port is 0. Otherwise the result
// is Config.Advertise, or else the bound address; an unspecified bound
// address without Advertise is an error wrapping ErrNoAdvertise.
func (t *Transport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if ip == "" {
		if t.advErr != nil {
			return nil, 0, t.advErr
		}
		return append(net.IP(nil), t.advertise.IP...), t.advertise.Port, nil
	}
	addr := net.ParseIP(ip)
	if addr == nil {
		return nil, 0, fmt.Errorf("gossiptls: advertise address %q is not an IP", ip)
	}
	if v4 := addr.To4(); v4 != nil {
		addr = v4
	}
	if port <= 0 {
		if t.advErr == nil {
			port = t.advertise.Port
		} else {
			port = t.ln.Addr().(*net.TCPAddr).Port
		}
	}
	if port > 65535 {
		return nil, 0, fmt.Errorf("gossiptls: advertise port %d out of range", port)
	}
	return addr, port, nil
}

// PacketCh implements memberlist.Transport. The channel is never closed.
func (t *Transport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// StreamCh implements memberlist.Transport. The channel is never closed.
// Every connection on it is a TLS connection whose ConnectionState reports
// the peer's verified certificate.
func (t *Transport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown implements memberlist.Transport. It closes the listener, every
// inbound connection and every stream (including those handed out through
// StreamCh or DialTimeout) and aborts stream dials at once; it then lets the
// packet senders write what is queued, dialing if need be (memberlist's
// Leave message is among it), for up to a second (or Config.Timeout if
// shorter); then it closes everything left and returns once every goroutine
// of the transport has ended. Later calls return nil; WriteTo and
// DialTimeout then fail with ErrClosed.
func (t *Transport) Shutdown() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.flushDeadline = time.Now().Add(min(t.cfg.Timeout, shutdownFlushTimeout))
	var inbound []net.Conn
	for c, packetOut := range t.conns {
		if !packetOut {
			inbound = append(inbound, c)
		}
	}
	t.mu.Unlock()

	close(t.done)
	t.cancel()
	err := t.ln.Close()
	for _, c := range inbound {
		_ = c.Close()
	}

	flushed := make(chan struct{})
	go func() {
		t.senders.Wait()
		close(flushed)
	}()
	timer := time.NewTimer(time.Until(t.flushDeadline))
	select {
	case <-flushed:
	case <-timer.C:
	}
	timer.Stop()
	t.sendCancel()
	t.mu.Lock()
	t.swept = true
	rest := make([]net.Conn, 0, len(t.conns))
	for c := range t.conns {
		rest = append(rest, c)
	}
	t.mu.Unlock()
	for _, c := range rest {
		_ = c.Close()
	}
	<-flushed
	t.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("gossiptls: close listener: %w", err)
	}
	return nil
}

// track registers raw so Shutdown closes it; false once Shutdown has
// started (for packetOut, once it has stopped flushing).
func (t *Transport) track(raw net.Conn, packetOut bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.swept || (t.closed && !packetOut) {
		return false
	}
	t.conns[raw] = packetOut
	return true
}

// closeRaw closes raw and forgets it.
func (t *Transport) closeRaw(raw net.Conn) {
	t.mu.Lock()
	delete(t.conns, raw)
	t.mu.Unlock()
	_ = raw.Close()
}

func (t *Transport) isClosed() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

func closedErr() error { return fmt.Errorf("%w: %w", ErrClosed, net.ErrClosed) }
