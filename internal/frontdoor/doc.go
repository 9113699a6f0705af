// Package frontdoor bounds what one listener lets in, so that a flood of
// connections cannot exhaust a node's file descriptors or memory.
//
//	ln, _ := net.Listen("tcp", addr)
//	fl := frontdoor.Wrap(ln, frontdoor.Config{
//		Name:             "grpc",
//		MaxConns:         4096,            // open at once, on this listener
//		FirstByteTimeout: 10 * time.Second, // silent connections are closed after this
//		Logger:           logger,
//	})
//	grpcServer.Serve(fl)
//
// # Contract
//
//   - At most Config.MaxConns connections accepted through the Listener are
//     open at once. A connection counts from Accept until its Close.
//   - A connection is pending until a Read on it first returns data.
//     Pending connections are the ones a flood of idle sockets is made of:
//     when the listener is full, a new connection evicts the oldest pending
//     one (closing it) and takes its place, so idle sockets never keep a
//     client that speaks at once out. Only when no connection is pending is
//     the new one closed at once instead.
//   - A pending connection is closed once Config.FirstByteTimeout has
//     passed. Completing the protocol's handshake is the server's own
//     bound (gRPC's ConnectionTimeout, a TLS handshake deadline).
//   - Accept never blocks on a refused connection: it is closed and Accept
//     goes on to the next. Refusals, evictions and timeouts are counted
//     (Stats) and logged at most once per Config.LogInterval.
//
// A Listener does not read or write on its own; it only observes the
// server's reads and closes connections.
package frontdoor
