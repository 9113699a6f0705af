package raftmux

import "errors"

var (
	// ErrResidency reports that a shard's Guard refused a target: no
	// connection was opened, or an open one was closed before it carried
	// another byte. The Guard's error is wrapped too.
	ErrResidency = errors.New("raftmux: residency refused")
	// ErrUnknownShard reports that the peer has no stream layer registered
	// for the shard (handshake status 1).
	ErrUnknownShard = errors.New("raftmux: unknown shard")
	// ErrRefused reports that the peer's Guard refused to serve the shard
	// (handshake status 2). The error text carries the peer's reason.
	ErrRefused = errors.New("raftmux: refused by peer")
	// ErrBadHeader reports a handshake header with the wrong magic or
	// protocol version (handshake status 3).
	ErrBadHeader = errors.New("raftmux: bad handshake header")
	// ErrHandshake reports a handshake that failed for any other reason: I/O
	// errors, timeouts, TLS failures, a malformed reply.
	ErrHandshake = errors.New("raftmux: handshake failed")
	// ErrClosed reports use of a closed Mux or stream layer. Errors carrying
	// it also match net.ErrClosed.
	ErrClosed = errors.New("raftmux: closed")
	// ErrAlreadyRegistered reports a second Register of the same shard.
	ErrAlreadyRegistered = errors.New("raftmux: shard already registered")
	// ErrNilGuard reports a Register without a Guard.
	ErrNilGuard = errors.New("raftmux: nil guard")
	// ErrRemote reports an RPC that reached the peer's shard and that the
	// peer's Raft answered with an error; the error text is the peer's.
	ErrRemote = errors.New("raftmux: peer failed the rpc")
	// ErrUnsupported reports a peer that does not speak the multiplexed
	// protocol (handshake version 2) or an RPC it cannot serve over it.
	ErrUnsupported = errors.New("raftmux: not supported by peer")

	errCallTimeout = errors.New("raftmux: rpc timed out")
	errConnClosed  = errors.New("raftmux: connection closed")
)
