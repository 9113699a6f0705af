package tlsfiles_test

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clover-kv/clover/internal/testcerts"
	"github.com/clover-kv/clover/internal/tlsfiles"
)

func TestNodeConfigsRequireTheClusterCA(t *testing.T) {
	ca := testcerts.NewCA(t, "cluster")
	cert, key := ca.Issue(t, "ie-1")
	srv, cli, err := tlsfiles.Node(cert, key, ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if srv.ClientAuth != tls.RequireAndVerifyClientCert || srv.ClientCAs == nil || len(srv.Certificates) != 1 {
		t.Fatalf("server config does not require a client certificate from the CA: %+v", srv)
	}
	if cli.RootCAs == nil || len(cli.Certificates) != 1 {
		t.Fatalf("client config does not present the node certificate and trust the CA: %+v", cli)
	}
	if _, err := tlsfiles.Client(cert, key, ca.CAFile); err != nil {
		t.Fatal(err)
	}
}

func TestBadFilesAreClearErrors(t *testing.T) {
	ca := testcerts.NewCA(t, "cluster")
	cert, key := ca.Issue(t, "ie-1")
	_, otherKey := ca.Issue(t, "ie-2")
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		cert, key, ca string
		want          string
	}{
		"no key":              {cert, "", ca.CAFile, "missing [key]"},
		"nothing":             {"", "", "", "missing [certificate key CA bundle]"},
		"no certificate file": {filepath.Join(dir, "nope.pem"), key, ca.CAFile, "certificate: open"},
		"no CA file":          {cert, key, filepath.Join(dir, "nope.pem"), "CA bundle: open"},
		"CA not PEM":          {cert, key, notPEM, "holds no PEM certificate"},
		"key of another":      {cert, otherKey, ca.CAFile, "with key"},
		"certificate not PEM": {notPEM, key, ca.CAFile, "with key"},
	} {
		_, _, err := tlsfiles.Node(tc.cert, tc.key, tc.ca)
		if !errors.Is(err, tlsfiles.ErrTLS) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrTLS saying %q", name, err, tc.want)
		}
	}
}
