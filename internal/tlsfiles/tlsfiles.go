// Package tlsfiles builds the mutual-TLS configurations of Clover's nodes
// and clients from PEM files: a certificate, its private key, and the
// cluster CA bundle that every peer's certificate must chain to.
//
// A node presents its certificate on every listener (gRPC, Raft, gossip)
// and when it dials, and it accepts only peers, nodes and clients alike,
// whose certificate the CA signed. Node certificates therefore need both
// server and client authentication in their extended key usage, and IP or
// DNS subject alternative names for the addresses the node advertises.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/clover-kv/clover/identity"
)

// ErrTLS wraps every error about the TLS files.
var ErrTLS = errors.New("tls")

// minVersion is the lowest protocol version spoken: every party is Clover.
const minVersion = tls.VersionTLS13

// Node returns the server and client configurations of a node: both
// present the certificate in certFile (key in keyFile) and trust the CAs in
// caFile; the server requires and verifies a client certificate.
func Node(certFile, keyFile, caFile string) (server, client *tls.Config, err error) {
	cert, pool, err := load("a node", certFile, keyFile, caFile)
	if err != nil {
		return nil, nil, err
	}
	server = &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   minVersion,
	}
	return server, clientConfig(cert, pool), nil
}

// Client returns the configuration of an application or operator client:
// it trusts the CAs in caFile and presents the certificate in certFile (key
// in keyFile), which nodes require.
func Client(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, pool, err := load("a client", certFile, keyFile, caFile)
	if err != nil {
		return nil, err
	}
	return clientConfig(cert, pool), nil
}

func clientConfig(cert tls.Certificate, pool *x509.CertPool) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: minVersion}
}

// load reads the three files of who (for the error when one is missing).
func load(who, certFile, keyFile, caFile string) (tls.Certificate, *x509.CertPool, error) {
	if certFile == "" || keyFile == "" || caFile == "" {
		return tls.Certificate{}, nil, fmt.Errorf("%w: %s needs a certificate, its key and the CA bundle (missing %s)", ErrTLS, who, missing(certFile, keyFile, caFile))
	}
	cert, err := keyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool, err := caPool(caFile)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return cert, pool, nil
}

func missing(certFile, keyFile, caFile string) string {
	var m []string
	for _, f := range []struct{ name, v string }{{"certificate", certFile}, {"key", keyFile}, {"CA bundle", caFile}} {
		if f.v == "" {
			m = append(m, f.name)
		}
	}
	return fmt.Sprint(m)
}

func keyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: certificate: %w", ErrTLS, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: key: %w", ErrTLS, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: certificate %s with key %s: %w", ErrTLS, certFile, keyFile, err)
	}
	return cert, nil
}

func caPool(caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%w: CA bundle: %w", ErrTLS, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: CA bundle %s holds no PEM certificate", ErrTLS, caFile)
	}
	return pool, nil
}

// Secure is a node's secure mode as its files describe it: the TLS
// configurations, the cluster (trust domain) its CA names, and the
// identity its own certificate attests.
type Secure struct {
	Server, Client *tls.Config
	TrustDomain    string
	Self           identity.Identity
}

// NodeSecure loads a node's files as Node does, and reads the identities
// in them: the CA bundle must name one cluster (every CA certificate the
// same spiffe://<trust-domain> URI SAN), and the certificate must be a
// node certificate of that cluster (see package identity). Certificates
// without identities, as made by other tools, cannot run a node in secure
// mode; `clover cert` makes ones that can.
func NodeSecure(certFile, keyFile, caFile string) (Secure, error) {
	srv, cli, err := Node(certFile, keyFile, caFile)
	if err != nil {
		return Secure{}, err
	}
	td, err := TrustDomain(caFile)
	if err != nil {
		return Secure{}, err
	}
	leaf, err := x509.ParseCertificate(srv.Certificates[0].Certificate[0])
	if err != nil {
		return Secure{}, fmt.Errorf("%w: certificate %s: %w", ErrTLS, certFile, err)
	}
	self, err := identity.FromCertificate(leaf)
	if err != nil {
		return Secure{}, fmt.Errorf("%w: certificate %s: %w", ErrTLS, certFile, err)
	}
	if self.TrustDomain != td {
		return Secure{}, fmt.Errorf("%w: certificate %s belongs to cluster %q, the CA bundle %s to %q", ErrTLS, certFile, self.TrustDomain, caFile, td)
	}
	if self.Kind != identity.Node {
		return Secure{}, fmt.Errorf("%w: certificate %s is a %s certificate (%s): a node needs a node certificate", ErrTLS, certFile, self.Kind, self.URI())
	}
	return Secure{Server: srv, Client: cli, TrustDomain: td, Self: self}, nil
}

// TrustDomain returns the cluster every CA certificate in caFile names.
func TrustDomain(caFile string) (string, error) {
	b, err := os.ReadFile(caFile)
	if err != nil {
		return "", fmt.Errorf("%w: CA bundle: %w", ErrTLS, err)
	}
	td := ""
	for block, rest := pem.Decode(b); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		ca, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return "", fmt.Errorf("%w: CA bundle %s: %w", ErrTLS, caFile, err)
		}
		d, err := identity.TrustDomainOfCA(ca)
		if err != nil {
			return "", fmt.Errorf("%w: CA bundle %s: %w (make the cluster's PKI with clover cert)", ErrTLS, caFile, err)
		}
		if td != "" && d != td {
			return "", fmt.Errorf("%w: CA bundle %s names two clusters, %q and %q", ErrTLS, caFile, td, d)
		}
		td = d
	}
	if td == "" {
		return "", fmt.Errorf("%w: CA bundle %s holds no PEM certificate", ErrTLS, caFile)
	}
	return td, nil
}
