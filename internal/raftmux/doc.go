// Package raftmux carries the Raft traffic of every shard of a node over one
// TCP listener, and the RPCs of every shard between two nodes over one
// shared connection.
//
// Each shard opens a Transport on the node's Mux and gives it to its
// raft.Raft:
//
//	ln, _ := net.Listen("tcp", ":7001")
//	mux := raftmux.New(ln, raftmux.Config{ServerTLS: srv, ClientTLS: cli})
//	defer mux.Close()
//
//	trans, err := mux.Transport(shardID, guard, raftmux.TransportConfig{MaxRPCsInFlight: 1})
//	if err != nil { ... }
//	r, err := raft.NewRaft(conf, fsm, logs, stable, snaps, trans)
//	...
//	r.Shutdown() // closes trans, which unregisters the shard
//
// Every node's Mux listens on the same address for all shards, so a shard's
// Raft server address is simply the node's Mux address.
//
// # Connections
//
// A Mux keeps one multiplexed connection (handshake version 2) to each node
// it sends RPCs to. Heartbeats, appends, votes and TimeoutNow of every shard
// travel on it as frames (see frame.go); frames that are ready together go
// out in one write, and answers come back on the same connection in any
// order, matched by call id. The accepting node serves heartbeats on its
// reader goroutine (raft's fast path) and everything else on a goroutine per
// RPC, so a busy shard delays no other.
//
// Each shard also has a stream layer (Register) under a raft.NetworkTransport
// of its own, whose connections (handshake version 1) carry what the shared
// connection should not: snapshots, appends whose entries exceed 1 MiB, and
// everything for a peer that does not speak version 2.
//
// # Residency
//
// A Guard decides, per shard, which peers may receive the shard's traffic and
// whether this node may serve it. A Transport asks Guard.AllowDial before it
// sends each RPC over the shared connection, and sends nothing when refused
// (the error wraps ErrResidency); a stream layer asks before opening a
// connection and again before every Write on one, so a peer the policy stops
// permitting gets nothing more even over a pooled connection. An inbound RPC
// or connection for a shard is served only if Guard.AllowAccept permits it;
// the sender then gets ErrRefused with the Guard's reason.
//
// # Wire protocol
//
// Inside TLS when configured, the dialer writes "CLVR", a protocol version
// byte (1 for a shard's own connection, 2 for a shared one) and the shard id
// (8 bytes, big-endian; 0 for a shared connection). The acceptor answers one
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
