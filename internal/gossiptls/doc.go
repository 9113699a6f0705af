// Package gossiptls is a hashicorp/memberlist transport that carries all
// gossip, packets and streams alike, over mutually authenticated TLS on one
// TCP listener, so the gossip port accepts only nodes holding a certificate
// from the cluster CA.
//
//	tr, err := gossiptls.New(gossiptls.Config{
//		BindAddr:  "10.0.0.5:7600",
//		ServerTLS: srv, // node certificate; client certificates are required
//		ClientTLS: cli, // node certificate; trusts the cluster CA
//	})
//	if err != nil { ... }
//	mc := memberlist.DefaultLANConfig()
//	mc.Name = "node-1"
//	mc.Transport = tr // memberlist's BindAddr and BindPort are then unused
//	ml, err := memberlist.Create(mc)
//	if err != nil {
//		tr.Shutdown() // memberlist does not always shut down a transport it failed to use
//		...
//	}
//	defer ml.Shutdown() // shuts the transport down
//
// # Addresses
//
// memberlist addresses nodes by IP, and the dialer verifies a peer's
// certificate against the host it dials (unless ClientTLS.ServerName is
// set), so node certificates need IP SANs for their advertised addresses.
// The advertised address is memberlist's AdvertiseAddr when set, else
// Config.Advertise, else the bound address; a listener bound to 0.0.0.0 or ::
// needs one of the first two (see Transport.FinalAdvertiseAddr).
//
// # Wire protocol
//
// Every connection starts with a TLS handshake (TLS settings come from the
// caller; the listener always requires and verifies a client certificate),
// bounded by Config.Timeout on both sides. The dialer's first byte inside
// TLS is the connection type:
//
//   - 'p', packets: a sequence of packets, each a 4-byte big-endian length
//     (1 to MaxPacketSize) and that many bytes, each delivered on PacketCh
//     with the TCP peer address as From and the time it was read as
//     Timestamp. The acceptor never writes on it.
//   - 's', stream: the rest of the connection is handed to StreamCh as is.
//
// Any other type byte, a length of zero or above MaxPacketSize, a packet not
// complete within Config.Timeout of its first byte, or a failed handshake closes
// the connection and counts in Stats.ConnsRejected. At most 128 inbound
// connections may be in their handshake at once; more are closed at once.
//
// # Packets
//
// Packets are best-effort, as over UDP, but ride on long-lived connections:
// each destination address has one queue (64 packets) and one goroutine that
// dials on the first packet, keeps the connection open, batches whatever is
// queued into as few TLS records as it can, and closes the connection after
// a minute without packets. A dial per packet would cost a TCP and TLS
// handshake (two round trips across sites, plus public-key operations) for
// each of the tens of probes and gossip messages a node sends each second.
// WriteTo therefore never blocks on the network: it enqueues and returns;
// a full queue, a failed dial or a failed write drops packets, counted in
// Stats.PacketsDropped, and memberlist's probes and retransmissions cover
// the loss. The goroutine also reads its connection, so a peer that closes
// it or refuses the certificate is noticed before the next packet and the
// next packet dials again.
//
// Streams (push-pull, fallback pings) get a fresh connection per dial, as
// with memberlist's own TCP streams.
//
// # Shutdown
//
// Shutdown closes the listener, every inbound connection and every stream
// (including those already handed to memberlist) and aborts stream dials at
// once. It then gives the packet senders up to a second to write what is
// queued, dialing where no connection is open, so the message of
// memberlist's Leave goes out as it would over UDP; then it closes what is
// left and waits for every goroutine.
// PacketCh and StreamCh are never closed; sends to them give up on Shutdown.
package gossiptls
