package raftmux

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"
)

// dial opens a connection to addr for shard and runs the handshake. timeout
// bounds the TCP dial (HandshakeTimeout when zero); HandshakeTimeout bounds
// the handshake that follows. Close of the Mux abandons it.
func (m *Mux) dial(shard uint64, addr string, timeout time.Duration) (net.Conn, error) {
	return m.dialVersion(protocolVersion, shard, addr, timeout)
}

// dialVersion is dial with the handshake version: protocolVersion for a
// shard's own connection, muxVersion (shard 0) for a multiplexed one.
func (m *Mux) dialVersion(version byte, shard uint64, addr string, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 {
		timeout = m.cfg.HandshakeTimeout
	}
	ctx, cancel := context.WithTimeout(m.ctx, timeout)
	raw, err := m.cfg.Dial(ctx, addr)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("raftmux: dial %s: %w", dialWhat(version, shard, addr), err)
	}
	conn, err := m.clientHandshake(raw, version, shard, addr)
	if err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("raftmux: dial %s: %w", dialWhat(version, shard, addr), err)
	}
	return conn, nil
}

func (m *Mux) clientHandshake(raw net.Conn, version byte, shard uint64, addr string) (net.Conn, error) {
	deadline := time.Now().Add(m.cfg.HandshakeTimeout)
	if err := raw.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	// Close of the Mux interrupts the handshake's reads and writes.
	stop := context.AfterFunc(m.ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	conn := raw
	if m.cfg.ClientTLS != nil {
		tc := tls.Client(raw, m.clientTLS(addr))
		ctx, cancel := context.WithDeadline(m.ctx, deadline)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%w: tls: %w", ErrHandshake, err)
		}
		conn = tc
	}
	h := encodeHeader(version, shard)
	if _, err := conn.Write(h[:]); err != nil {
		return nil, fmt.Errorf("%w: write header: %w", ErrHandshake, err)
	}
	if err := readReply(conn); err != nil {
		return nil, err
	}
	if !stop() {
		return nil, fmt.Errorf("%w: %w", ErrClosed, net.ErrClosed)
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	return conn, nil
}

// clientTLS returns a copy of ClientTLS with ServerName set to the host of
// addr when the configuration leaves it empty, and VerifyDial bound to addr.
func (m *Mux) clientTLS(addr string) *tls.Config {
	cfg := m.cfg.ClientTLS.Clone()
	if cfg.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
	}
	if v := m.cfg.VerifyDial; v != nil {
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { return v(addr, cs) }
	}
	return cfg
}

func dialWhat(version byte, shard uint64, addr string) string {
	if version == muxVersion {
		return "multiplexed connection at " + addr
	}
	return fmt.Sprintf("shard %d at %s", shard, addr)
}
