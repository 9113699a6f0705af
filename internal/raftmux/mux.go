package raftmux

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/hashicorp/raft"
)

// Mux carries the Raft traffic of every shard of a node over one listener.
// Each shard registers a stream layer; inbound connections are routed to it
// by the handshake header. A Mux is safe for concurrent use.
type Mux struct {
	ln     net.Listener
	cfg    Config
	hbGate gate // Config.HeartbeatAlign
	log    *slog.Logger
	ctx    context.Context // cancelled by Close; parent of dials and handshakes
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	shards  map[uint64]*streamLayer
	pending map[net.Conn]struct{} // inbound conns still in their handshake
	peers   map[string]*peer      // multiplexed connections to other nodes, by address
	conns   map[*muxConn]struct{} // every open multiplexed connection, both ways
	wg      sync.WaitGroup        // accept loop and handshake goroutines

	tmu        sync.RWMutex
	transports map[uint64]*Transport // the shards served over multiplexed connections
}

// New returns a Mux serving ln and starts its accept loop. The Mux owns ln:
// Close closes it, and a listener closed from outside shuts the Mux down.
func New(ln net.Listener, cfg Config) *Mux {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	m := &Mux{
		ln:      ln,
		cfg:     cfg,
		log:     cfg.Logger,
		ctx:     ctx,
		cancel:  cancel,
		shards:  make(map[uint64]*streamLayer),
		pending: make(map[net.Conn]struct{}),
		peers:   make(map[string]*peer),
		conns:   make(map[*muxConn]struct{}),

		transports: make(map[uint64]*Transport),
	}
	m.wg.Add(1)
	go m.acceptLoop()
	return m
}

// Addr returns the address peers dial: Config.Advertise if set, else the
// listener's address.
func (m *Mux) Addr() net.Addr {
	if m.cfg.Advertise != nil {
		return m.cfg.Advertise
	}
	return m.ln.Addr()
}

// Register returns the stream layer of shard, for a raft.NetworkTransport
// (see NewTransport). g decides which peers the shard may reach and whether
// this node may serve it; it must not be nil. Registering a shard twice
// fails with ErrAlreadyRegistered; closing the returned layer (the transport
// does so on Close) or Unregister frees the shard for a new Register.
func (m *Mux) Register(shard uint64, g Guard) (raft.StreamLayer, error) {
	if g == nil {
		return nil, fmt.Errorf("raftmux: register shard %d: %w", shard, ErrNilGuard)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("raftmux: register shard %d: %w", shard, ErrClosed)
	}
	if _, ok := m.shards[shard]; ok {
		return nil, fmt.Errorf("raftmux: register shard %d: %w", shard, ErrAlreadyRegistered)
	}
	l := newStreamLayer(m, shard, g)
	m.shards[shard] = l
	return l, nil
}

// Unregister closes the stream layer of shard: its Accept returns an error,
// its connections are closed, and connections for it that are still in their
// handshake or arrive later are refused with status 1 (unknown shard).
// Unregistering an unknown shard does nothing.
func (m *Mux) Unregister(shard uint64) {
	m.tmu.Lock()
	delete(m.transports, shard)
	m.tmu.Unlock()
	m.mu.Lock()
	l := m.shards[shard]
	delete(m.shards, shard)
	m.mu.Unlock()
	if l != nil {
		l.shut()
	}
}

// Close closes the listener, every stream layer and every connection still
// in its handshake, then waits for the Mux's goroutines. Dials in progress
// are abandoned. Close is idempotent.
func (m *Mux) Close() error {
	err := m.shutdown()
	m.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// shutdown does all of Close but the wait; the accept loop calls it when the
// listener fails for good.
func (m *Mux) shutdown() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	layers := make([]*streamLayer, 0, len(m.shards))
	for _, l := range m.shards {
		layers = append(layers, l)
	}
	clear(m.shards)
	pending := make([]net.Conn, 0, len(m.pending))
	for c := range m.pending {
		pending = append(pending, c)
	}
	conns := make([]*muxConn, 0, len(m.conns))
	for mc := range m.conns {
		conns = append(conns, mc)
	}
	clear(m.conns)
	m.mu.Unlock()
	m.tmu.Lock()
	clear(m.transports)
	m.tmu.Unlock()

	m.cancel()
	err := m.ln.Close()
	for _, l := range layers {
		l.shut()
	}
	for _, c := range pending {
		_ = c.Close()
	}
	for _, mc := range conns {
		mc.close()
	}
	return err
}

func (m *Mux) lookup(shard uint64) *streamLayer {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.shards[shard]
}

// forget removes l from the registry if it is still the shard's layer.
func (m *Mux) forget(l *streamLayer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shards[l.shard] == l {
		delete(m.shards, l.shard)
	}
}
