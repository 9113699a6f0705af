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
	"errors"
	"fmt"
	"os"
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
