package gossiptls

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// DialTimeout implements memberlist.Transport: DialAddressTimeout without a
// node name.
func (t *Transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport. It opens a
// stream to a.Addr; timeout (Config.Timeout when not positive) bounds the
// TCP dial, the TLS handshake and the type byte together. The returned
// connection is a TLS connection (its ConnectionState reports the peer's
// verified certificate) that the caller must Close; Shutdown closes it too.
func (t *Transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 {
		timeout = t.cfg.Timeout
	}
	deadline := time.Now().Add(timeout)
	tc, raw, err := t.dialTLS(a.Addr, deadline, t.clientTLSFor(a.Addr), false)
	if err != nil {
		return nil, err
	}
	if err := raw.SetDeadline(deadline); err != nil {
		t.closeRaw(raw)
		return nil, fmt.Errorf("%w: %s: %w", ErrHandshake, a.Addr, err)
	}
	if _, err := tc.Write([]byte{typeStream}); err != nil {
		t.closeRaw(raw)
		return nil, fmt.Errorf("%w: %s: connection type: %w", ErrHandshake, a.Addr, err)
	}
	if err := raw.SetDeadline(time.Time{}); err != nil {
		t.closeRaw(raw)
		return nil, fmt.Errorf("%w: %s: %w", ErrHandshake, a.Addr, err)
	}
	return &streamConn{Conn: tc, raw: raw, t: t}, nil
}

// dialTLS dials addr and runs the client TLS handshake before deadline.
// The raw connection is registered so Shutdown closes it; the caller
// releases it with closeRaw. Shutdown aborts a stream dial (packet false) at
// once, a packet dial when it stops flushing. The returned connection has no
// deadline set.
func (t *Transport) dialTLS(addr string, deadline time.Time, cfg *tls.Config, packet bool) (*tls.Conn, net.Conn, error) {
	parent := t.ctx
	if packet {
		parent = t.sendCtx
	}
	ctx, cancel := context.WithDeadline(parent, deadline)
	defer cancel()
	raw, err := t.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		if parent.Err() != nil {
			return nil, nil, closedErr()
		}
		return nil, nil, fmt.Errorf("gossiptls: dial %s: %w", addr, err)
	}
	if !t.track(raw, packet) {
		_ = raw.Close()
		return nil, nil, closedErr()
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		t.closeRaw(raw)
		if parent.Err() != nil {
			return nil, nil, closedErr()
		}
		return nil, nil, fmt.Errorf("%w: %s: tls: %w", ErrHandshake, addr, err)
	}
	return tc, raw, nil
}

// clientTLSFor returns a copy of ClientTLS with ServerName set to the host
// of addr when it is empty, and VerifyDial bound to addr.
func (t *Transport) clientTLSFor(addr string) *tls.Config {
	cfg := t.cfg.ClientTLS.Clone()
	if cfg.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
	}
	if v := t.cfg.VerifyDial; v != nil {
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { return v(addr, cs) }
	}
	return cfg
}

// streamConn is a stream handed to memberlist. Close releases it from the
// transport's bookkeeping; Shutdown closes its TCP connection directly.
type streamConn struct {
	*tls.Conn
	raw  net.Conn
	t    *Transport
	once sync.Once
	err  error
}

// Close closes the TLS connection (sending close_notify) and forgets it.
func (c *streamConn) Close() error {
	c.once.Do(func() {
		c.err = c.Conn.Close()
		c.t.mu.Lock()
		delete(c.t.conns, c.raw)
		c.t.mu.Unlock()
	})
	return c.err
}
