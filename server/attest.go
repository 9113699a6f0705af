package server

import (
	"crypto/x509"
	"fmt"

	"github.com/clover-kv/clover/identity"
	"github.com/clover-kv/clover/placement"
)

// WithAttestedIdentity returns c with its node ID and locality taken from
// its certificate. In secure mode (ServerTLS set) a node's ID and locality
// are what its certificate, signed by the cluster CA, attests: NodeID and
// Locality may be left empty, and if set must agree with the certificate,
// or the node refuses to start with an error naming both values. The
// certificate must be a node certificate of cluster TrustDomain; a user
// certificate cannot run a node. Without certificates the node runs only
// when c.Insecure says so: its ID and locality are then whatever it is
// configured with, and nothing attests them. Errors wrap ErrInvalidConfig.
// Calling it again on its result returns the result.
func (c Config) WithAttestedIdentity() (Config, error) {
	bad := func(format string, args ...any) (Config, error) {
		return c, fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if c.ServerTLS == nil {
		switch {
		case c.ClientTLS != nil:
			return bad("client TLS without server TLS: give both or neither")
		case !c.Insecure:
			return bad("no certificates: secure mode (the default) needs the node's certificate, key and the cluster CA " +
				"(--tls-cert, --tls-key, --tls-ca; make them with clover cert); --insecure runs without, for development only: " +
				"node localities and callers are then unattested")
		}
		return c, nil
	}
	if c.Insecure {
		return bad("--insecure with certificates: choose one")
	}
	if c.ClientTLS == nil {
		return bad("server TLS without client TLS: give both or neither")
	}
	if c.TrustDomain == "" {
		return bad("secure mode needs the cluster's trust domain (the name its CA certificate carries)")
	}
	if len(c.ServerTLS.Certificates) == 0 || len(c.ServerTLS.Certificates[0].Certificate) == 0 {
		return bad("server TLS has no certificate")
	}
	leaf, err := x509.ParseCertificate(c.ServerTLS.Certificates[0].Certificate[0])
	if err != nil {
		return bad("the node's certificate: %v", err)
	}
	self, err := identity.FromCertificate(leaf)
	if err != nil {
		return bad("the node's certificate: %v", err)
	}
	switch {
	case self.TrustDomain != c.TrustDomain:
		return bad("the node's certificate belongs to cluster %q, not %q", self.TrustDomain, c.TrustDomain)
	case self.Kind != identity.Node:
		return bad("the certificate is a %s certificate (%s): a node needs a node certificate", self.Kind, self.URI())
	case c.NodeID != "" && c.NodeID != self.Name:
		return bad("node id %q is configured, but the certificate attests node %q: the certificate decides; drop --node-id or use this node's certificate",
			c.NodeID, self.Name)
	case c.Locality != (placement.Locality{}) && c.Locality != self.Locality:
		return bad("locality %s is configured, but the certificate attests %s: the certificate decides; drop --locality or use this node's certificate",
			c.Locality, self.Locality)
	}
	c.NodeID, c.Locality = self.Name, self.Locality
	return c, nil
}

// Secure reports whether the node runs in secure mode: certificates
// attest its identity and its peers'.
func (c Config) Secure() bool { return c.ServerTLS != nil }
