package gossiptls

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/clover-kv/clover/internal/testcerts"
)

// testCA is a certificate authority made for one test.
type testCA = testcerts.CA

func newCA(t *testing.T, name string) *testCA { return testcerts.NewCA(t, name) }

// tlsConfigs returns mutual-TLS server and client configurations presenting
// cert and trusting the given CAs.
func tlsConfigs(cert tls.Certificate, trusted ...*testCA) (server, client *tls.Config) {
	pool := x509.NewCertPool()
	for _, ca := range trusted {
		pool.AddCert(ca.Certificate())
	}
	server = &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
	client = &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS13,
	}
	return server, client
}

// nodeTLS returns the TLS configurations of a node of ca.
func nodeTLS(t *testing.T, ca *testCA, name string) (server, client *tls.Config) {
	t.Helper()
	return tlsConfigs(ca.Pair(t, name), ca)
}

// newTransport starts a Transport on 127.0.0.1:0 and shuts it down at the
// end of the test.
func newTransport(t *testing.T, ca *testCA, name string, mod func(*Config)) *Transport {
	t.Helper()
	srv, cli := nodeTLS(t, ca, name)
	cfg := Config{BindAddr: "127.0.0.1:0", ServerTLS: srv, ClientTLS: cli, Timeout: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown() })
	return tr
}

// waitFor calls cond on every signal from changed, and once at the start,
// until it holds; it fails the test after timeout.
func waitFor(t *testing.T, changed <-chan struct{}, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for !cond() {
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}
