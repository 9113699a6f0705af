// Package raftmux carries the Raft traffic of every shard of a node over one
// TCP listener, keeping hashicorp/raft's NetworkTransport (and its heartbeat
// fast path) for each shard's group.
//
// Each shard registers with the node's Mux and gets its own
// raft.StreamLayer; a NetworkTransport over that layer serves the shard's
// raft.Raft:
//
//	ln, _ := net.Listen("tcp", ":7001")
//	mux := raftmux.New(ln, raftmux.Config{ServerTLS: srv, ClientTLS: cli})
//	defer mux.Close()
//
//	stream, err := mux.Register(shardID, guard) // guard: the shard's residency policy
//	if err != nil { ... }
//	trans := raftmux.NewTransport(stream, raftmux.TransportConfig{})
//	r, err := raft.NewRaft(conf, fsm, logs, stable, snaps, trans)
//	...
//	r.Shutdown() // closes trans, which closes stream and unregisters the shard
//
// Every node's Mux listens on the same address for all shards, so a shard's
// Raft server address is simply the node's Mux address.
//
// # Residency
//
// A Guard decides, per shard, which peers may receive the shard's traffic and
// whether this node may serve it. Dial asks Guard.AllowDial before opening a
// connection and opens none when refused (the error wraps ErrResidency); every
// Write on an outbound connection asks again, so a peer the policy stops
// permitting gets nothing more even over a pooled connection. An inbound
// connection for a shard is served only if Guard.AllowAccept permits it; the
// dialer then gets ErrRefused with the Guard's reason.
//
// # Wire protocol
//
// Inside TLS when configured, the dialer writes "CLVR", a protocol version
// byte (1) and the shard id (8 bytes, big-endian). The acceptor answers one
// status byte: 0 OK, 1 unknown shard, 2 refused by the Guard (followed by a
// 2-byte length and up to 512 bytes of reason), 3 bad header. Raft's bytes
// flow only after OK; on any other status the acceptor closes the connection.
// Both sides bound the exchange with Config.HandshakeTimeout and clear the
// deadline afterwards.
//
// Every inbound connection does its handshake in its own goroutine and waits
// for its own shard's Accept, so a slow peer, an unknown shard or a shard that
// is slow to accept never holds up another shard.
package raftmux
