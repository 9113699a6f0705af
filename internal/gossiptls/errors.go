package gossiptls

import "errors"

var (
	// ErrConfig reports a Config that New cannot use. The error text names
	// the field.
	ErrConfig = errors.New("gossiptls: invalid config")
	// ErrClosed reports use of a Transport after Shutdown. Errors carrying it
	// also match net.ErrClosed.
	ErrClosed = errors.New("gossiptls: transport closed")
	// ErrPacketSize reports a packet that is empty or larger than
	// MaxPacketSize, on either side of the wire.
	ErrPacketSize = errors.New("gossiptls: bad packet size")
	// ErrHandshake reports an outbound connection whose TLS handshake or
	// connection-type byte failed; the cause is wrapped too.
	ErrHandshake = errors.New("gossiptls: handshake failed")
	// ErrProtocol reports an inbound connection that broke the wire
	// protocol: an unknown type byte, a bad length or a truncated packet.
	// Such connections are closed and counted in Stats.ConnsRejected.
	ErrProtocol = errors.New("gossiptls: protocol violation")
	// ErrNoAdvertise reports that there is no address to advertise: the
	// listener is bound to an unspecified address (0.0.0.0 or ::) and
	// neither Config.Advertise nor memberlist's AdvertiseAddr is set.
	ErrNoAdvertise = errors.New("gossiptls: no advertise address")
)
