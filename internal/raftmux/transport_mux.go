package raftmux

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

const (
	// redialBackoff: after a failed dial of a multiplexed connection, RPCs
	// to that peer fail at once for this long instead of each dialing.
	redialBackoff = 50 * time.Millisecond
	// legacyRecheck: how long a peer that refused a multiplexed connection
	// is served over per-shard connections before it is asked again.
	legacyRecheck = 30 * time.Second
)

// Transport is the raft.Transport of one shard. Its RPCs to a peer node
// travel over the one multiplexed connection this node keeps to that node,
// shared by every shard, so the heartbeats and appends of all shards that
// are ready together go out in one write. Three things use the shard's own
// connections (a raft.NetworkTransport over the shard's stream layer)
// instead: snapshots, appends whose entries exceed 1 MiB, and peers that do
// not speak the multiplexed protocol.
//
// Residency is kept as on a shard's own connections: the Guard's AllowDial
// is asked before every RPC is sent, and an accepting node asks the shard's
// AllowAccept before it serves each one.
type Transport struct {
	m     *Mux
	shard uint64
	guard Guard
	inner *raft.NetworkTransport

	consume   chan raft.RPC
	heartbeat atomic.Pointer[func(raft.RPC)]
	done      chan struct{}
	once      sync.Once

	// urgent counts callers that need this shard's heartbeats sent now;
	// wake releases a heartbeat already held at the Mux's gate.
	urgent atomic.Int32
	wake   chan struct{}
}

var (
	_ raft.Transport   = (*Transport)(nil)
	_ raft.WithClose   = (*Transport)(nil)
	_ raft.WithPreVote = (*Transport)(nil)
)

// Transport registers shard and returns its transport, for raft.NewRaft. g
// decides which peers the shard may reach and whether this node may serve
// it; it must not be nil. cfg configures the shard's own connections. The
// transport's Close (which raft.Raft.Shutdown calls) unregisters the shard.
func (m *Mux) Transport(shard uint64, g Guard, cfg TransportConfig) (*Transport, error) {
	stream, err := m.Register(shard, g)
	if err != nil {
		return nil, err
	}
	t := &Transport{
		m:       m,
		shard:   shard,
		guard:   g,
		inner:   NewTransport(stream, cfg),
		consume: make(chan raft.RPC),
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
	}
	m.tmu.Lock()
	m.transports[shard] = t
	m.tmu.Unlock()
	go t.forward()
	return t, nil
}

// forward passes on what arrives over the shard's own connections.
func (t *Transport) forward() {
	in := t.inner.Consumer()
	for {
		select {
		case rpc := <-in:
			select {
			case t.consume <- rpc:
			case <-t.done:
				return
			}
		case <-t.done:
			return
		}
	}
}

// Consumer returns the channel of inbound RPCs.
func (t *Transport) Consumer() <-chan raft.RPC { return t.consume }

// LocalAddr returns the Mux's address.
func (t *Transport) LocalAddr() raft.ServerAddress { return raft.ServerAddress(t.m.Addr().String()) }

// AppendEntriesPipeline is not supported: replication sends one append at a
// time per peer, which measured the lowest single-client latency.
func (t *Transport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

// AppendEntries sends an append (or a heartbeat) to target.
func (t *Transport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	if appendEntriesSize(args) > inlineAppendLimit {
		return t.inner.AppendEntries(id, target, args, resp)
	}
	if t.m.cfg.HeartbeatAlign > 0 && t.urgent.Load() == 0 && isHeartbeat(args) {
		select {
		case <-t.m.hbGate.next(t.m.cfg.HeartbeatAlign):
		case <-t.wake:
		case <-t.done:
		}
	}
	return t.rpc(target, rpcAppendEntries, args, resp, func() error {
		return t.inner.AppendEntries(id, target, args, resp)
	})
}

// Urgent makes the shard's heartbeats go out at once, without waiting at
// the Mux's heartbeat gate, until the returned function is called. A leader
// confirming its leadership (raft's VerifyLeader, one heartbeat round) uses
// it so that a read waits for no gate.
func (t *Transport) Urgent() (done func()) {
	t.urgent.Add(1)
	select {
	case t.wake <- struct{}{}:
	default:
	}
	return func() { t.urgent.Add(-1) }
}

// gate releases, together, every heartbeat that waits for it: the first
// waiter opens a period, and the period's channel is closed when it ends.
type gate struct {
	mu sync.Mutex
	ch chan struct{}
}

func (g *gate) next(period time.Duration) <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ch == nil {
		ch := make(chan struct{})
		g.ch = ch
		time.AfterFunc(period, func() {
			g.mu.Lock()
			if g.ch == ch {
				g.ch = nil
			}
			g.mu.Unlock()
			close(ch)
		})
	}
	return g.ch
}

// RequestVote asks target for its vote.
func (t *Transport) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	return t.rpc(target, rpcRequestVote, args, resp, func() error {
		return t.inner.RequestVote(id, target, args, resp)
	})
}

// RequestPreVote asks target whether it would vote.
func (t *Transport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return t.rpc(target, rpcRequestPreVote, args, resp, func() error {
		return t.inner.RequestPreVote(id, target, args, resp)
	})
}

// TimeoutNow tells target to start an election at once.
func (t *Transport) TimeoutNow(id raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	return t.rpc(target, rpcTimeoutNow, args, resp, func() error {
		return t.inner.TimeoutNow(id, target, args, resp)
	})
}

// InstallSnapshot streams a snapshot to target over a connection of the
// shard's own.
func (t *Transport) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	return t.inner.InstallSnapshot(id, target, args, resp, data)
}

// EncodePeer returns the address as bytes.
func (t *Transport) EncodePeer(_ raft.ServerID, addr raft.ServerAddress) []byte { return []byte(addr) }

// DecodePeer returns the address EncodePeer encoded.
func (t *Transport) DecodePeer(b []byte) raft.ServerAddress { return raft.ServerAddress(b) }

// SetHeartbeatHandler sets the function that serves heartbeats on the
// reader goroutine, ahead of the RPCs queued for raft's main loop.
func (t *Transport) SetHeartbeatHandler(cb func(raft.RPC)) {
	if cb == nil {
		t.heartbeat.Store(nil)
	} else {
		t.heartbeat.Store(&cb)
	}
	t.inner.SetHeartbeatHandler(cb)
}

// Close unregisters the shard and closes its own connections. The shared
// connections stay open for the other shards. Close is idempotent.
func (t *Transport) Close() error {
	t.once.Do(func() {
		t.m.tmu.Lock()
		if t.m.transports[t.shard] == t {
			delete(t.m.transports, t.shard)
		}
		t.m.tmu.Unlock()
		close(t.done)
		_ = t.inner.Close()
	})
	return nil
}

// rpc sends one request over the multiplexed connection to target and
// decodes the answer into resp. A peer that does not speak the multiplexed
// protocol gets the request through legacy (the shard's own connections).
func (t *Transport) rpc(target raft.ServerAddress, typ rpcType, args, resp any, legacy func() error) error {
	select {
	case <-t.done:
		return raft.ErrTransportShutdown
	default:
	}
	if err := t.guard.AllowDial(target); err != nil {
		t.m.log.Warn("raftmux: rpc refused by guard", "shard", t.shard, "target", string(target), "rpc", typ.String(), "err", err)
		return fmt.Errorf("%w: shard %d to %s: %w", ErrResidency, t.shard, target, err)
	}
	mc, err := t.m.muxConnTo(string(target))
	if err != nil {
		if errors.Is(err, ErrUnsupported) {
			return legacy()
		}
		return fmt.Errorf("raftmux: shard %d %s to %s: %w", t.shard, typ, target, err)
	}
	c, id, err := mc.start(func(b []byte, id uint64) ([]byte, error) {
		b, start := beginFrame(b, kindRequest, typ, t.shard, id)
		b, err := encodeRequest(b, args)
		if err != nil {
			return nil, err
		}
		return endFrame(b, start), nil
	})
	if err != nil {
		return fmt.Errorf("raftmux: shard %d %s to %s: %w", t.shard, typ, target, err)
	}
	var res callResult
	select {
	case res = <-c.ch:
		releaseCall(c)
	case <-t.done:
		if mc.abandon(id) {
			releaseCall(c)
		}
		return raft.ErrTransportShutdown
	}
	if res.err != nil {
		return fmt.Errorf("raftmux: shard %d %s to %s: %w", t.shard, typ, target, res.err)
	}
	if res.f.rpc != typ {
		return fmt.Errorf("raftmux: shard %d %s to %s: %w: answered as %s", t.shard, typ, target, errMalformed, res.f.rpc)
	}
	if res.f.kind == kindError {
		return fmt.Errorf("raftmux: shard %d %s to %s: %w", t.shard, typ, target, remoteError(res.f.body))
	}
	if err := decodeResponse(typ, res.f.body, resp); err != nil {
		return fmt.Errorf("raftmux: shard %d %s to %s: %w", t.shard, typ, target, err)
	}
	return nil
}

// remoteError turns an error frame's body into the error it reports.
func remoteError(body []byte) error {
	if len(body) == 0 {
		return fmt.Errorf("%w: empty error frame", errMalformed)
	}
	text := string(body[1:])
	switch body[0] {
	case errCodeUnknown:
		return fmt.Errorf("%w: %s", ErrUnknownShard, text)
	case errCodeRefused:
		return fmt.Errorf("%w: %q", ErrRefused, text)
	case errCodeRaft:
		return fmt.Errorf("%w: %s", ErrRemote, text)
	case errCodeUnsupported:
		return fmt.Errorf("%w: %s", ErrUnsupported, text)
	}
	return fmt.Errorf("%w: error code %d: %s", errMalformed, body[0], text)
}

// reply sends raft's answer to the request f.
func (t *Transport) reply(mc *muxConn, f frame, resp raft.RPCResponse) error {
	if resp.Error != nil {
		return mc.send(func(b []byte) []byte {
			return appendErrorFrame(b, f.rpc, f.shard, f.id, errCodeRaft, resp.Error.Error())
		})
	}
	return mc.send(func(b []byte) []byte {
		out, start := beginFrame(b, kindResponse, f.rpc, f.shard, f.id)
		out, err := encodeResponse(out, f.rpc, resp.Response)
		if err != nil {
			return appendErrorFrame(b, f.rpc, f.shard, f.id, errCodeRaft, err.Error())
		}
		return endFrame(out, start)
	})
}

// dispatch queues rpc for raft's main loop and sends the answer.
func (t *Transport) dispatch(mc *muxConn, f frame, rpc raft.RPC, respCh <-chan raft.RPCResponse) {
	closed := func() {
		_ = mc.send(func(b []byte) []byte {
			return appendErrorFrame(b, f.rpc, f.shard, f.id, errCodeUnknown, fmt.Sprintf("shard %d closed", f.shard))
		})
	}
	select {
	case t.consume <- rpc:
	case <-t.done:
		closed()
		return
	}
	select {
	case resp := <-respCh:
		_ = t.reply(mc, f, resp)
	case <-t.done:
		closed()
	}
}

func (m *Mux) transportOf(shard uint64) *Transport {
	m.tmu.RLock()
	defer m.tmu.RUnlock()
	return m.transports[shard]
}

// serveMux serves an accepted multiplexed connection until it fails.
func (m *Mux) serveMux(conn net.Conn) {
	mc := newMuxConn(conn, m.cfg.RPCTimeout, false, m.handleInbound)
	if !m.trackConn(mc) {
		mc.close()
		return
	}
	<-mc.done
	mc.stopped.Wait()
	m.forgetConn(mc)
}

// handleInbound serves one request frame. Heartbeats are answered on the
// spot; anything else is queued for the shard's Raft on its own goroutine,
// so a shard that is busy (say, syncing its log) holds up no other shard.
func (m *Mux) handleInbound(mc *muxConn, f frame) error {
	if f.kind != kindRequest {
		return fmt.Errorf("%w: answer frame on an accepted connection", errMalformed)
	}
	t := m.transportOf(f.shard)
	if t == nil {
		return mc.send(func(b []byte) []byte {
			return appendErrorFrame(b, f.rpc, f.shard, f.id, errCodeUnknown, fmt.Sprintf("shard %d is not open on this node", f.shard))
		})
	}
	if err := t.guard.AllowAccept(); err != nil {
		m.log.Warn("raftmux: rpc refused by guard", "shard", f.shard, "rpc", f.rpc.String(), "err", err)
		return mc.send(func(b []byte) []byte {
			return appendErrorFrame(b, f.rpc, f.shard, f.id, errCodeRefused, err.Error())
		})
	}
	cmd, err := decodeRequest(f.rpc, f.body)
	if err != nil {
		return err
	}
	respCh := make(chan raft.RPCResponse, 1)
	rpc := raft.RPC{Command: cmd, RespChan: respCh}
	if req, ok := cmd.(*raft.AppendEntriesRequest); ok && isHeartbeat(req) {
		if fn := t.heartbeat.Load(); fn != nil {
			(*fn)(rpc)
			select {
			case resp := <-respCh:
				return t.reply(mc, f, resp)
			default: // raft is shutting down and answered nothing
				return mc.send(func(b []byte) []byte {
					return appendErrorFrame(b, f.rpc, f.shard, f.id, errCodeUnknown, fmt.Sprintf("shard %d shutting down", f.shard))
				})
			}
		}
	}
	go t.dispatch(mc, f, rpc, respCh)
	return nil
}

// peer is this node's multiplexed connection to one other node.
type peer struct {
	mu        sync.Mutex
	mc        *muxConn
	dialing   chan struct{} // closed when the dial in progress ends
	failErr   error
	failUntil time.Time
}

// muxConnTo returns the open multiplexed connection to addr, dialing one if
// there is none. One dial runs at a time per peer; after a failure, calls
// fail fast for redialBackoff (legacyRecheck if the peer does not speak the
// protocol, which is reported as ErrUnsupported).
func (m *Mux) muxConnTo(addr string) (*muxConn, error) {
	if m.cfg.v1Only {
		return nil, fmt.Errorf("%w: multiplexing off", ErrUnsupported)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: %w", ErrClosed, net.ErrClosed)
	}
	p := m.peers[addr]
	if p == nil {
		p = &peer{}
		m.peers[addr] = p
	}
	m.mu.Unlock()

	p.mu.Lock()
	for {
		if p.mc != nil && !p.mc.isClosed() {
			mc := p.mc
			p.mu.Unlock()
			return mc, nil
		}
		if ch := p.dialing; ch != nil {
			p.mu.Unlock()
			select {
			case <-ch:
			case <-m.ctx.Done():
				return nil, fmt.Errorf("%w: %w", ErrClosed, net.ErrClosed)
			}
			p.mu.Lock()
			continue
		}
		if time.Now().Before(p.failUntil) {
			err := p.failErr
			p.mu.Unlock()
			return nil, err
		}
		ch := make(chan struct{})
		p.dialing = ch
		p.mu.Unlock()

		mc, err := m.dialMux(addr)

		p.mu.Lock()
		p.dialing = nil
		close(ch)
		if err != nil {
			p.failErr, p.failUntil = err, time.Now().Add(redialBackoff)
			if errors.Is(err, ErrUnsupported) {
				p.failUntil = time.Now().Add(legacyRecheck)
			}
			p.mu.Unlock()
			return nil, err
		}
		p.mc = mc
		p.mu.Unlock()
		return mc, nil
	}
}

func (m *Mux) dialMux(addr string) (*muxConn, error) {
	conn, err := m.dialVersion(muxVersion, 0, addr, 0)
	if err != nil {
		if errors.Is(err, ErrBadHeader) {
			m.log.Info("raftmux: peer does not speak the multiplexed protocol; using per-shard connections", "peer", addr)
			return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
		}
		return nil, err
	}
	mc := newMuxConn(conn, m.cfg.RPCTimeout, true, func(mc *muxConn, f frame) error { return mc.deliver(f) })
	if !m.trackConn(mc) {
		mc.close()
		return nil, fmt.Errorf("%w: %w", ErrClosed, net.ErrClosed)
	}
	go func() {
		<-mc.done
		m.forgetConn(mc)
	}()
	return mc, nil
}

// trackConn records mc so Close can close it; false if the Mux is closed.
func (m *Mux) trackConn(mc *muxConn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.conns[mc] = struct{}{}
	return true
}

func (m *Mux) forgetConn(mc *muxConn) {
	m.mu.Lock()
	delete(m.conns, mc)
	m.mu.Unlock()
}
