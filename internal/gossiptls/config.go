package gossiptls

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"
)

const (
	// MaxPacketSize is the largest packet, in bytes, the transport sends or
	// accepts. memberlist's packets are bounded by its UDPBufferSize (1400
	// bytes by default), far below it.
	MaxPacketSize = 64 << 10
	// DefaultTimeout bounds a dial plus its TLS handshake when
	// Config.Timeout is zero.
	DefaultTimeout = 5 * time.Second
)

const (
	// packetIdleTimeout closes an outbound packet connection that carried
	// nothing for this long.
	packetIdleTimeout = time.Minute
	// packetRecvIdleTimeout closes an inbound packet connection that carried
	// nothing for this long (a half-open connection; senders close theirs
	// after packetIdleTimeout).
	packetRecvIdleTimeout = 3 * packetIdleTimeout
	// packetQueueLen is how many packets may wait for one peer; more are
	// dropped, as a full socket buffer drops datagrams.
	packetQueueLen = 64
	// packetBatchMax is how many queued packets one flush carries at most.
	packetBatchMax = 64
	// maxPendingHandshakes bounds inbound connections that have not yet
	// finished their TLS handshake and type byte; more are closed at once.
	maxPendingHandshakes = 128
	// shutdownFlushTimeout bounds how long Shutdown lets open packet
	// connections write what is queued (memberlist's Leave message among it).
	shutdownFlushTimeout = time.Second
	// writeBufferSize is the buffer that batches packets into TLS records.
	writeBufferSize = 16 << 10
)

// Config configures a Transport. ServerTLS, ClientTLS and BindAddr are
// required; the other fields have working zero values.
type Config struct {
	// BindAddr is the host:port to listen on; port 0 picks a free one.
	BindAddr string
	// Advertise, if set, is the IP:port other nodes use to reach this node
	// (the host must be an IP literal, as memberlist addresses nodes by IP;
	// port 0 means the bound port). Default: the bound address, which must
	// then not be unspecified (0.0.0.0 or ::).
	Advertise string
	// ServerTLS secures every accepted connection. The transport uses a
	// clone whose ClientAuth is tls.RequireAndVerifyClientCert: only nodes
	// speak gossip, and every node has a client certificate.
	ServerTLS *tls.Config
	// ClientTLS secures every dialed connection and must carry this node's
	// certificate. When its ServerName is empty, the host of the dialed
	// address is used, so peer certificates need IP SANs.
	ClientTLS *tls.Config
	// VerifyDial, if set, is called after the TLS handshake of every dialed
	// connection with the address dialed and the connection's state; an
	// error fails the dial.
	VerifyDial func(addr string, cs tls.ConnectionState) error
	// Timeout bounds a dial plus its TLS handshake, on both sides, and the
	// rest of a packet once its first byte has arrived. Default 5s.
	Timeout time.Duration
	// MaxConns bounds the inbound connections open at once (see package
	// frontdoor: one that has sent nothing gives its place to a newer one);
	// 0 means no bound. Inbound connections still in their handshake are
	// bounded apart from it, by 128.
	MaxConns int
	// Logger receives the transport's logs. Default: discarded.
	Logger *slog.Logger
}

// withDefaults returns c with every zero optional field set to its default.
func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate checks c without changing it.
func (c Config) validate() error {
	if c.BindAddr == "" {
		return fmt.Errorf("%w: BindAddr is empty", ErrConfig)
	}
	if _, _, err := net.SplitHostPort(c.BindAddr); err != nil {
		return fmt.Errorf("%w: BindAddr %q: %w", ErrConfig, c.BindAddr, err)
	}
	if c.ServerTLS == nil || c.ClientTLS == nil {
		return fmt.Errorf("%w: ServerTLS and ClientTLS are both required", ErrConfig)
	}
	if len(c.ServerTLS.Certificates) == 0 && c.ServerTLS.GetCertificate == nil && c.ServerTLS.GetConfigForClient == nil {
		return fmt.Errorf("%w: ServerTLS has no certificate", ErrConfig)
	}
	if len(c.ClientTLS.Certificates) == 0 && c.ClientTLS.GetClientCertificate == nil {
		return fmt.Errorf("%w: ClientTLS has no certificate (peers require one)", ErrConfig)
	}
	if c.Advertise != "" {
		if _, err := parseAdvertise(c.Advertise); err != nil {
			return err
		}
	}
	return nil
}

// parseAdvertise parses an IP:port advertise address; port 0 is allowed
// (meaning the bound port).
func parseAdvertise(s string) (*net.TCPAddr, error) {
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		return nil, fmt.Errorf("%w: Advertise %q: %w", ErrConfig, s, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsUnspecified() {
		return nil, fmt.Errorf("%w: Advertise %q: host must be a specified IP address", ErrConfig, s)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("%w: Advertise %q: bad port", ErrConfig, s)
	}
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	return &net.TCPAddr{IP: ip, Port: port}, nil
}
