package gossiptls

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
)

// peer is the outbound packet path to one address: a bounded queue drained
// by one goroutine (runPeer) that owns at most one TLS connection.
type peer struct {
	addr string
	tls  *tls.Config
	q    chan []byte
}

// packetConn is an open outbound packet connection.
type packetConn struct {
	raw  net.Conn
	bw   *bufio.Writer
	dead chan struct{} // closed once the peer closes or writes anything
}

// WriteTo implements memberlist.Transport: WriteToAddress without a node
// name.
func (t *Transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress implements memberlist.NodeAwareTransport. It copies b into
// the queue of a.Addr and returns at once with the time it did so; the
// peer's goroutine dials if needed and writes it. Delivery is best-effort,
// like memberlist's UDP: a packet is dropped (and counted in
// Stats.PacketsDropped) when the queue is full or the dial or write fails.
// It fails only for a packet that is empty or larger than MaxPacketSize
// (ErrPacketSize) and after Shutdown (ErrClosed).
func (t *Transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if len(b) == 0 || len(b) > MaxPacketSize {
		return time.Time{}, fmt.Errorf("%w: %d bytes to %s", ErrPacketSize, len(b), a.Addr)
	}
	buf := append([]byte(nil), b...)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return time.Time{}, closedErr()
	}
	p := t.peers[a.Addr]
	if p == nil {
		p = &peer{addr: a.Addr, tls: t.clientTLSFor(a.Addr), q: make(chan []byte, packetQueueLen)}
		t.peers[a.Addr] = p
		t.senders.Add(1)
		go t.runPeer(p)
	}
	select {
	case p.q <- buf:
	default:
		t.stats.dropped.Add(1)
	}
	return time.Now(), nil
}

// runPeer writes p's queued packets until the transport shuts down or p has
// been idle for packetIdleTimeout.
func (t *Transport) runPeer(p *peer) {
	defer t.senders.Done()
	var pc *packetConn
	idle := time.NewTimer(packetIdleTimeout)
	defer idle.Stop()
	for {
		var dead chan struct{}
		if pc != nil {
			dead = pc.dead
		}
		select {
		case <-t.done:
			t.flushOnShutdown(p, pc)
			return
		case <-dead:
			t.closeRaw(pc.raw)
			pc = nil
		case <-idle.C:
			if t.retire(p) {
				if pc != nil {
					t.closeRaw(pc.raw)
				}
				return
			}
			idle.Reset(packetIdleTimeout)
		case b := <-p.q:
			pc = t.send(p, pc, b)
			idle.Reset(packetIdleTimeout)
		}
	}
}

// retire forgets p if nothing is queued for it, so the next WriteTo starts
// afresh. WriteToAddress enqueues under the same lock, so no packet is lost.
func (t *Transport) retire(p *peer) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(p.q) > 0 || t.peers[p.addr] != p {
		return false
	}
	delete(t.peers, p.addr)
	return true
}

// send writes b and whatever else is queued for p, dialing first if pc is
// nil. It returns the connection to use next, nil after a failure.
func (t *Transport) send(p *peer, pc *packetConn, b []byte) *packetConn {
	if pc == nil {
		var err error
		if pc, err = t.dialPacket(p, time.Now().Add(t.cfg.Timeout)); err != nil {
			n := 1 + drain(p.q)
			t.stats.dropped.Add(uint64(n))
			if !t.isClosed() {
				t.logger.Debug("gossiptls: packet dial failed", "addr", p.addr, "dropped", n, "err", err)
			}
			return nil
		}
	}
	if err := t.writeBatch(p, pc, b, time.Now().Add(t.cfg.Timeout)); err != nil {
		if !t.isClosed() {
			t.logger.Debug("gossiptls: packet write failed", "addr", p.addr, "err", err)
		}
		t.closeRaw(pc.raw)
		return nil
	}
	return pc
}

// writeBatch writes b plus up to packetBatchMax-1 queued packets and flushes
// them, all before deadline. Packets lost to an error count as dropped.
func (t *Transport) writeBatch(p *peer, pc *packetConn, b []byte, deadline time.Time) error {
	if err := pc.raw.SetWriteDeadline(deadline); err != nil {
		t.stats.dropped.Add(1)
		return err
	}
	n := 0
	var err error
	for b != nil {
		n++
		if err = writeFrame(pc.bw, b); err != nil {
			break
		}
		b = nil
		if n < packetBatchMax {
			select {
			case b = <-p.q:
			default:
			}
		}
	}
	if err == nil {
		err = pc.bw.Flush()
	}
	if err != nil {
		t.stats.dropped.Add(uint64(n))
		return err
	}
	t.stats.sent.Add(uint64(n))
	return nil
}

// flushOnShutdown writes what is queued for p before the flush deadline,
// dialing if p has no connection, then closes the connection.
func (t *Transport) flushOnShutdown(p *peer, pc *packetConn) {
	deadline := t.flushDeadline
	if pc == nil && len(p.q) > 0 {
		var err error
		if pc, err = t.dialPacket(p, deadline); err != nil {
			t.stats.dropped.Add(uint64(drain(p.q)))
			return
		}
	}
	if pc == nil {
		return
	}
	defer t.closeRaw(pc.raw)
	for {
		select {
		case b := <-p.q:
			if t.writeBatch(p, pc, b, deadline) != nil {
				t.stats.dropped.Add(uint64(drain(p.q)))
				return
			}
		default:
			return
		}
	}
}

// dialPacket opens a packet connection to p before deadline and starts the
// goroutine that watches it for the peer closing it.
func (t *Transport) dialPacket(p *peer, deadline time.Time) (*packetConn, error) {
	tc, raw, err := t.dialTLS(p.addr, deadline, p.tls, true)
	if err != nil {
		return nil, err
	}
	pc := &packetConn{raw: raw, bw: bufio.NewWriterSize(tc, writeBufferSize), dead: make(chan struct{})}
	// The type byte travels with the first packet's record.
	_ = pc.bw.WriteByte(typePacket)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer close(pc.dead)
		// The peer never writes on a packet connection: any byte, EOF or
		// error (such as a TLS alert for a refused certificate) ends it.
		var b [1]byte
		_, _ = tc.Read(b[:])
	}()
	return pc, nil
}

// drain empties q without blocking and returns how many packets it held.
func drain(q chan []byte) int {
	n := 0
	for {
		select {
		case <-q:
			n++
		default:
			return n
		}
	}
}
