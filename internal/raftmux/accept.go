package raftmux

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/clover-kv/clover/internal/acceptloop"
)

// acceptLoop hands every accepted connection to its own handshake goroutine,
// so a slow peer or a shard that is slow to Accept never stalls the others.
// A listener closed under the Mux shuts the Mux down.
func (m *Mux) acceptLoop() {
	defer m.wg.Done()
	err := acceptloop.Run(m.ln, m.ctx.Done(), m.startServe, func(err error, wait time.Duration) {
		m.log.Warn("raftmux: accept failed", "err", err, "retry_in", wait)
	})
	if err != nil {
		m.log.Warn("raftmux: listener closed, shutting down", "addr", m.ln.Addr().String())
		_ = m.shutdown()
	}
}

// startServe starts the handshake goroutine of raw unless the Mux is closed.
func (m *Mux) startServe(raw net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.pending[raw] = struct{}{}
	m.wg.Add(1)
	go m.serve(raw)
	return true
}

func (m *Mux) serve(raw net.Conn) {
	defer m.wg.Done()
	conn, l, err := m.serverHandshake(raw)
	m.mu.Lock()
	delete(m.pending, raw)
	m.mu.Unlock()
	if err != nil {
		level := m.log.Debug
		if errors.Is(err, ErrRefused) || errors.Is(err, ErrBadHeader) {
			level = m.log.Warn
		}
		level("raftmux: inbound connection rejected", "remote", raw.RemoteAddr().String(), "err", err)
		return
	}
	if l == nil {
		m.serveMux(conn)
		return
	}
	l.deliver(conn)
}

// serverHandshake runs TLS (if configured) and the header exchange on raw.
// On success the connection has no deadline and belongs to the returned
// layer, or, when the layer is nil, is a multiplexed connection; on failure
// it is closed, after a status byte when one applies.
func (m *Mux) serverHandshake(raw net.Conn) (_ net.Conn, l *streamLayer, err error) {
	conn := raw
	defer func() {
		if err != nil {
			_ = conn.Close()
		}
	}()
	deadline := time.Now().Add(m.cfg.HandshakeTimeout)
	if err := raw.SetDeadline(deadline); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if m.cfg.ServerTLS != nil {
		tc := tls.Server(raw, m.cfg.ServerTLS)
		ctx, cancel := context.WithDeadline(m.ctx, deadline)
		herr := tc.HandshakeContext(ctx)
		cancel()
		if herr != nil {
			return nil, nil, fmt.Errorf("%w: tls: %w", ErrHandshake, herr)
		}
		conn = tc
	}
	var h [headerLen]byte
	if _, err := io.ReadFull(conn, h[:]); err != nil {
		return nil, nil, fmt.Errorf("%w: read header: %w", ErrHandshake, err)
	}
	maxVersion := byte(muxVersion)
	if m.cfg.v1Only {
		maxVersion = protocolVersion
	}
	version, shard, err := decodeHeader(h, maxVersion)
	if err != nil {
		_ = writeStatus(conn, statusBadHeader)
		return nil, nil, err
	}
	if version == muxVersion {
		// Residency is decided per frame, by the shard each names.
		if err := writeStatus(conn, statusOK); err != nil {
			return nil, nil, fmt.Errorf("%w: write status: %w", ErrHandshake, err)
		}
		if err := conn.SetDeadline(time.Time{}); err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrHandshake, err)
		}
		return conn, nil, nil
	}
	if l = m.lookup(shard); l == nil {
		_ = writeStatus(conn, statusUnknownShard)
		return nil, nil, fmt.Errorf("shard %d: %w", shard, ErrUnknownShard)
	}
	if gerr := l.guard.AllowAccept(); gerr != nil {
		_ = writeRefusal(conn, gerr.Error())
		return nil, nil, fmt.Errorf("shard %d: %w: %w", shard, ErrRefused, gerr)
	}
	if err := writeStatus(conn, statusOK); err != nil {
		return nil, nil, fmt.Errorf("%w: write status: %w", ErrHandshake, err)
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	return conn, l, nil
}
