package gossiptls

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/clover-kv/clover/internal/acceptloop"
)

// acceptLoop hands every accepted connection to its own goroutine, so a slow
// or hostile peer never holds up another. A connection beyond
// maxPendingHandshakes is closed at once; a listener closed before
// Shutdown is logged as an error and ends the loop.
func (t *Transport) acceptLoop() {
	defer t.wg.Done()
	err := acceptloop.Run(t.ln, t.done, t.admit, func(err error, wait time.Duration) {
		t.logger.Warn("gossiptls: accept failed", "err", err, "retry_in", wait)
	})
	if err != nil {
		t.logger.Error("gossiptls: listener closed before Shutdown", "addr", t.ln.Addr().String())
	}
}

// admit takes an accepted connection into a handshake slot and starts
// serving it; false once the transport is shut down.
func (t *Transport) admit(raw net.Conn) bool {
	select {
	case t.pending <- struct{}{}:
	default:
		t.stats.rejected.Add(1)
		t.logger.Warn("gossiptls: too many pending handshakes; connection closed", "remote", raw.RemoteAddr().String())
		_ = raw.Close()
		return true
	}
	if !t.startServe(raw) {
		<-t.pending
		return false
	}
	return true
}

// startServe starts the goroutine serving raw unless the transport is shut
// down.
func (t *Transport) startServe(raw net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.conns[raw] = false
	t.wg.Add(1)
	go t.serve(raw)
	return true
}

// serve runs the TLS handshake and reads the type byte of one inbound
// connection, then reads its packets or hands it to StreamCh.
func (t *Transport) serve(raw net.Conn) {
	defer t.wg.Done()
	tc, typ, err := t.serverHandshake(raw)
	<-t.pending
	if err != nil {
		t.reject(raw, err)
		return
	}
	switch typ {
	case typePacket:
		t.readPackets(raw, tc)
	case typeStream:
		conn := &streamConn{Conn: tc, raw: raw, t: t}
		select {
		case t.streamCh <- conn:
		case <-t.done:
			_ = conn.Close()
		}
	default:
		t.reject(raw, fmt.Errorf("%w: connection type 0x%02x", ErrProtocol, typ))
	}
}

// serverHandshake runs the TLS handshake and reads the type byte, both
// within Config.Timeout, and clears the deadline.
func (t *Transport) serverHandshake(raw net.Conn) (*tls.Conn, byte, error) {
	if err := raw.SetDeadline(time.Now().Add(t.cfg.Timeout)); err != nil {
		return nil, 0, err
	}
	tc := tls.Server(raw, t.serverTLS)
	if err := tc.Handshake(); err != nil {
		return nil, 0, fmt.Errorf("tls: %w", err)
	}
	var typ [1]byte
	if _, err := tc.Read(typ[:]); err != nil {
		return nil, 0, fmt.Errorf("%w: connection type: %w", ErrProtocol, err)
	}
	if err := raw.SetDeadline(time.Time{}); err != nil {
		return nil, 0, err
	}
	return tc, typ[0], nil
}

// readPackets hands every packet of one inbound packet connection to
// PacketCh until the connection ends, breaks the protocol or the transport
// shuts down.
func (t *Transport) readPackets(raw net.Conn, tc *tls.Conn) {
	from := raw.RemoteAddr()
	for {
		buf, err := readFrame(tc, packetRecvIdleTimeout, t.cfg.Timeout)
		if err != nil {
			if errors.Is(err, errIdle) {
				t.closeRaw(raw)
			} else {
				t.reject(raw, err)
			}
			return
		}
		p := &memberlist.Packet{Buf: buf, From: from, Timestamp: time.Now()}
		t.stats.received.Add(1)
		select {
		case t.packetCh <- p:
		case <-t.done:
			t.closeRaw(raw)
			return
		}
	}
}

// reject closes an inbound connection that failed; after Shutdown it is
// closed quietly.
// The count is taken before the close, so a peer that sees the close sees
// the count.
func (t *Transport) reject(raw net.Conn, err error) {
	if t.isClosed() {
		t.closeRaw(raw)
		return
	}
	t.stats.rejected.Add(1)
	t.closeRaw(raw)
	level := t.logger.Warn
	if errors.Is(err, io.EOF) {
		level = t.logger.Debug // a port check: connected and closed, sent nothing
	}
	level("gossiptls: inbound connection rejected", "remote", raw.RemoteAddr().String(), "err", err)
}
