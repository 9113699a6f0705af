// Package faultnet is an in-process network for cluster tests that can cut,
// drop or delay traffic between chosen nodes while the nodes talk real TCP
// over loopback.
//
// A test registers which addresses belong to which node, hands each node the
// dial function of its own name and, optionally, wraps each node's listener.
// Faults are then switched on and off from the test:
//
//	n := faultnet.New()
//	n.Register("a", lnA.Addr().String())
//	n.Register("b", lnB.Addr().String())
//	cfgA.Dial = n.Dialer("a") // every outbound connection of node a
//	lnB = n.Listener("b", lnB) // inbound connections of node b (optional)
//
//	n.Partition("a", "b")     // existing a<->b conns close, new dials fail fast
//	n.DropOneWay("a", "b")    // bytes a->b vanish, the conn stays open
//	n.Delay("a", "b", 50*time.Millisecond)
//	n.Isolate("c")            // c is cut from every node
//	n.Heal()                  // every fault removed
//
// # Where faults apply
//
// A connection between two registered nodes is faulted by the wrapper the
// dialing node's [Network.Dialer] returns, for both directions: its Write
// carries the dialer->target direction, its Read the target->dialer one. The
// accepting side therefore needs no wrapper for these faults. [Network.Listener]
// adds what the dialer cannot see: connections from peers that did not dial
// through this Network (clients, tools) are closed when the listening node is
// isolated, and refused while it stays isolated.
//
// # Fault model
//
//   - Cut (Partition, Isolate): dials fail at once with an error wrapping
//     [ErrPartitioned] and no connection is opened; open connections between
//     the nodes are closed when the cut is made.
//   - Drop: Write reports success and the bytes are discarded; on the read
//     side the received bytes are discarded. A byte stream with a hole hands
//     its reader garbage, so once a connection lost bytes in one direction it
//     never delivers later bytes in that direction, and Heal closes it.
//   - Delay: every Write in the delayed direction waits d before it reaches
//     the socket (bounded by the write deadline); every Read of data coming
//     from the delayed direction waits d before it returns (a Read may thus
//     return up to d after its deadline). A dial waits for the delay of both
//     directions, as a TCP handshake would. The writer is held while it waits,
//     so a delayed link also carries at most one Write per d per connection.
//
// Faults are looked up at each Read, Write and dial, so they apply to open and
// new connections alike. A Network holds no goroutines; it needs no Close.
package faultnet
