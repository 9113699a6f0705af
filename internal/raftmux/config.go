package raftmux

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// DefaultHandshakeTimeout bounds a handshake when Config.HandshakeTimeout is
// zero.
const DefaultHandshakeTimeout = 5 * time.Second

// Config configures a Mux. The zero value works: plaintext, net.Dialer,
// the listener's own address, a 5s handshake timeout, no logs.
type Config struct {
	// ServerTLS, if set, wraps every accepted connection (tls.Server) before
	// the handshake header is read.
	ServerTLS *tls.Config
	// ClientTLS, if set, wraps every dialed connection (tls.Client). When its
	// ServerName is empty, the host of the dialed address is used.
	// ServerTLS and ClientTLS both nil is plaintext (development mode).
	ClientTLS *tls.Config
	// VerifyDial, if set with ClientTLS, is called after the TLS handshake
	// of every dialed connection with the address dialed and the
	// connection's state; an error fails the dial. A node uses it to check
	// that the peer at addr is the node it expects there.
	VerifyDial func(addr string, cs tls.ConnectionState) error
	// Dial, if set, opens outbound TCP connections instead of net.Dialer
	// (tests inject faults here). It must honour ctx.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// Advertise, if set, is the address other nodes use to reach this node,
	// and what the stream layers report as their Addr. Default: the
	// listener's address.
	Advertise net.Addr
	// HandshakeTimeout bounds the TLS handshake plus the raftmux header
	// exchange of one connection, on both sides. Default 5s.
	HandshakeTimeout time.Duration
	// Logger receives the Mux's logs. Default: discarded.
	Logger *slog.Logger
	// RPCTimeout bounds one RPC over a multiplexed connection, and each
	// write on one. A connection on which calls wait and nothing arrives for
	// this long is closed. Default 10s.
	RPCTimeout time.Duration
	// HeartbeatAlign, if positive, holds each shard's routine heartbeats
	// for up to this long so that the heartbeats of many shards leave
	// together (one write, one read and one wake-up on each side for all of
	// them, instead of one each). A shard whose leader is confirming its
	// leadership (Transport.Urgent) sends at once. Keep it well below the
	// leader lease less the longest heartbeat gap. Default 0 (off).
	HeartbeatAlign time.Duration

	// v1Only makes the Mux serve and dial only per-shard connections, as a
	// node that predates multiplexed ones does (tests of the fallback).
	v1Only bool
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RPCTimeout <= 0 {
		c.RPCTimeout = DefaultTransportTimeout
	}
	if c.Dial == nil {
		var d net.Dialer
		c.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	return c
}

// Guard decides residency for one shard.
//
// AllowDial is consulted before every outbound connection of the shard and
// before every Write on one, so a shard's entries and snapshots never reach a
// node its policy does not permit, even over a connection opened while it
// still did. AllowAccept is consulted for every inbound connection of the
// shard: a node refuses to serve a shard it may not hold. A non-nil error
// refuses; its text travels to the dialing peer, so it must not hold user
// keys or values. Both methods may be called concurrently and should be cheap.
type Guard interface {
	AllowDial(target raft.ServerAddress) error
	AllowAccept() error
}

// AllowAll is the Guard of a shard without residency limits, such as the
// meta group, which holds no user data.
type AllowAll struct{}

// AllowDial permits every target.
func (AllowAll) AllowDial(raft.ServerAddress) error { return nil }

// AllowAccept permits every inbound connection.
func (AllowAll) AllowAccept() error { return nil }
