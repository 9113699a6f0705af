package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/clover-kv/clover/identity"
)

// errPeerRefused wraps every refusal of a peer's certificate.
var errPeerRefused = errors.New("peer refused")

// peerIdentity returns the identity a TLS peer's verified certificate
// attests in this node's cluster.
func (s *Server) peerIdentity(cs tls.ConnectionState) (identity.Identity, error) {
	return identity.FromConnectionState(cs, s.cfg.TrustDomain)
}

// verifyAnyPeer is the gRPC listener's check: the peer holds a valid
// identity of this cluster, user or node. What it may do is the gateway's
// decision, per request.
func (s *Server) verifyAnyPeer(cs tls.ConnectionState) error {
	if _, err := s.peerIdentity(cs); err != nil {
		return s.refusePeer("grpc", "", err)
	}
	return nil
}

// verifyNodePeer is the check of the Raft and gossip listeners and of
// gossip dials: only a node certificate of this cluster may speak Raft or
// gossip. A user certificate cannot join as a node.
func (s *Server) verifyNodePeer(what string) func(cs tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		id, err := s.peerIdentity(cs)
		if err == nil && id.Kind != identity.Node {
			err = fmt.Errorf("%s is a %s certificate: only nodes speak %s", id.URI(), id.Kind, what)
		}
		if err != nil {
			return s.refusePeer(what, "", err)
		}
		return nil
	}
}

// addrKind says which of a node's addresses is dialed.
type addrKind int

const (
	raftAddrKind addrKind = iota
	grpcAddrKind
)

func (k addrKind) String() string {
	if k == raftAddrKind {
		return "raft"
	}
	return "grpc"
}

// verifyNodeAt returns the dial-side check for k: the peer at addr must
// present the certificate of the node this node expects there, by the
// catalogue or, for a node not yet recorded, by the meta leader's own
// attestation of it (see attestations), with the same ID and locality.
// Replicas, forwarded requests and their data go only to nodes whose
// certificate attests them.
func (s *Server) verifyNodeAt(k addrKind) func(addr string, cs tls.ConnectionState) error {
	return func(addr string, cs tls.ConnectionState) error {
		id, err := s.peerIdentity(cs)
		if err == nil && id.Kind != identity.Node {
			err = fmt.Errorf("%s is a %s certificate, not a node's", id.URI(), id.Kind)
		}
		if err == nil {
			err = s.expectNodeAt(k, addr, id)
		}
		if err != nil {
			return s.refusePeer(k.String()+" dial", addr, err)
		}
		return nil
	}
}

// expectNodeAt checks id against the node expected at addr.
func (s *Server) expectNodeAt(k addrKind, addr string, id identity.Identity) error {
	for _, n := range s.catalog().nodes {
		at := n.RaftAddr
		if k == grpcAddrKind {
			at = n.GRPCAddr
		}
		if at != addr {
			continue
		}
		if n.ID != id.Name || n.Locality != id.Locality {
			return fmt.Errorf("the catalogue records node %s at %s (%s), the certificate there attests node %s at %s",
				n.ID, addr, n.Locality, id.Name, id.Locality)
		}
		return nil
	}
	if want, ok := s.attest.at(k, addr); ok {
		if want.Name != id.Name || want.Locality != id.Locality {
			return fmt.Errorf("node %s (%s) was attested at %s, the certificate there attests node %s at %s",
				want.Name, want.Locality, addr, id.Name, id.Locality)
		}
		return nil
	}
	return fmt.Errorf("no node is known at %s", addr)
}

// refusePeer logs a refused peer (at most once a minute per reason) and
// returns the error for the handshake.
func (s *Server) refusePeer(what, addr string, err error) error {
	key := what + " " + addr + " " + err.Error()
	if s.peerLog.allow(key) {
		s.logger.Warn("secure mode: peer refused", "on", what, "addr", addr, "err", err)
	}
	return fmt.Errorf("%w: %w", errPeerRefused, err)
}

// logLimiter lets a message through once per interval per key.
type logLimiter struct {
	mu   sync.Mutex
	last map[string]time.Time
}

const peerLogInterval = time.Minute

func (l *logLimiter) allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.last == nil {
		l.last = map[string]time.Time{}
	}
	if t, ok := l.last[key]; ok && now.Sub(t) < peerLogInterval {
		return false
	}
	if len(l.last) > 1024 {
		clear(l.last)
	}
	l.last[key] = now
	return true
}

// serverTLS returns a copy of the node's server TLS configuration whose
// handshakes also pass verify.
func (s *Server) serverTLS(verify func(tls.ConnectionState) error) *tls.Config {
	c := s.cfg.ServerTLS.Clone()
	c.VerifyConnection = verify
	return c
}
