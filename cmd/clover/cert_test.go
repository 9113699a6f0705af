package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/identity"
	"github.com/clover-kv/clover/internal/pki"
	"github.com/clover-kv/clover/internal/tlsfiles"
	"github.com/clover-kv/clover/placement"
)

// noCluster is a CLI whose endpoint answers nothing and whose TLS files do
// not exist: the cert commands must read neither.
func noCluster(t *testing.T) cli {
	t.Setenv("CLOVER_TLS_CERT", filepath.Join(t.TempDir(), "missing.pem"))
	return cli{t: t, endpoints: "127.0.0.1:1"}
}

// clover cert makes a PKI whose node and user certificates carry the
// identities asked for, chain to the CA, and serve mutual TLS between a
// node (server) and a user (client) through internal/tlsfiles.
func TestCertCommands(t *testing.T) {
	c := noCluster(t)
	dir := filepath.Join(t.TempDir(), "pki")
	d := []string{"--certs-dir", dir}
	out := c.ok(append([]string{"cert", "create-ca", "--cluster", "prod"}, d...)...)
	if !strings.Contains(out, "wrote "+filepath.Join(dir, "ca.crt")) || !strings.Contains(out, "trust domain:  prod") {
		t.Errorf("create-ca printed %q", out)
	}
	c.ok(append([]string{"cert", "create-node", "--node-id", "ie-1", "--country", "ie", "--region", "ie-dublin", "--zone", "a",
		"--host", "127.0.0.1,localhost", "--host", "ie-1.internal"}, d...)...)
	var created jsonCreated
	c.okJSON(&created, append([]string{"cert", "create-user", "--name", "alice", "--roles", "writer, reader", "--jurisdiction", "ie"}, d...)...)
	if created.Certificate.Kind != "user" || !reflect.DeepEqual(created.Certificate.Roles, []string{"reader", "writer"}) || !created.Certificate.SignedByCA {
		t.Errorf("create-user -w json: %+v", created)
	}

	ca := loadCert(t, filepath.Join(dir, "ca.crt"))
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for file, want := range map[string]identity.Identity{
		"node.ie-1.crt": {TrustDomain: "prod", Kind: identity.Node, Name: "ie-1",
			Locality: placement.Locality{Country: "IE", Region: "ie-dublin", Zone: "a"}},
		"user.alice.crt": {TrustDomain: "prod", Kind: identity.User, Name: "alice",
			Roles: []identity.Role{identity.RoleReader, identity.RoleWriter}, Country: "IE"},
	} {
		cert := loadCert(t, filepath.Join(dir, file))
		if got, err := identity.FromCertificate(cert); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v, %v; want %+v", file, got, err, want)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s does not chain to ca.crt: %v", file, err)
		}
	}

	srvConf, _, err := tlsfiles.Node(filepath.Join(dir, "node.ie-1.crt"), filepath.Join(dir, "node.ie-1.key"), filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	cliConf, err := tlsfiles.Client(filepath.Join(dir, "user.alice.crt"), filepath.Join(dir, "user.alice.key"), filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "ie-1.internal"} {
		cliConf.ServerName = host
		srv, cl := tlsHandshake(t, srvConf, cliConf)
		if id, err := identity.FromConnectionState(srv, "prod"); err != nil || id.Name != "alice" || !id.HasRole(identity.RoleWriter) {
			t.Errorf("the node sees %+v, %v", id, err)
		}
		if id, err := identity.FromConnectionState(cl, "prod"); err != nil || id.Name != "ie-1" {
			t.Errorf("the user sees %+v, %v", id, err)
		}
	}

	out = c.ok(append([]string{"cert", "list"}, d...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || fieldsOf(lines, "ca.crt") == nil ||
		!strings.Contains(strings.Join(fieldsOf(lines, "node.ie-1.crt"), " "), "node ie-1 country=IE,region=ie-dublin,zone=a") ||
		!strings.Contains(strings.Join(fieldsOf(lines, "user.alice.crt"), " "), "user alice roles=reader,writer jurisdiction=IE") {
		t.Errorf("list printed:\n%s", out)
	}
	var listed []jsonCert
	c.okJSON(&listed, append([]string{"cert", "list"}, d...)...)
	if len(listed) != 3 || listed[0].Kind != "ca" || listed[1].Locality.Region != "ie-dublin" || !listed[2].SignedByCA {
		t.Errorf("list -w json: %+v", listed)
	}
	out = c.ok("cert", "show", filepath.Join(dir, "node.ie-1.crt"))
	for _, want := range []string{"identity:      spiffe://prod/node/ie-1", "locality:      country=IE,region=ie-dublin,zone=a",
		"dns names:     localhost, ie-1.internal", "usage:         server, client", "signed by CA:  yes"} {
		if !strings.Contains(out, want) {
			t.Errorf("show does not print %q:\n%s", want, out)
		}
	}
}

// --certs-dir defaults to $CLOVER_CERTS_DIR, else ./certs.
func TestCertDirDefault(t *testing.T) {
	c := noCluster(t)
	t.Chdir(t.TempDir())
	c.ok("cert", "create-ca", "--cluster", "local")
	if _, err := os.Stat(filepath.Join("certs", "ca.key")); err != nil {
		t.Errorf("without --certs-dir or CLOVER_CERTS_DIR: %v", err)
	}
	env := filepath.Join(t.TempDir(), "env-certs")
	t.Setenv("CLOVER_CERTS_DIR", env)
	c.ok("cert", "create-ca", "--cluster", "env")
	if e, err := pki.Show(filepath.Join(env, "ca.crt")); err != nil || e.TrustDomain != "env" {
		t.Errorf("CLOVER_CERTS_DIR: %+v, %v", e, err)
	}
}

// Bad input is refused with the flag and the problem named, usage errors
// with code 2, bad values with code 7, and nothing is overwritten.
func TestCertRefusals(t *testing.T) {
	c := noCluster(t)
	dir := t.TempDir()
	d := func(args ...string) []string { return append(append([]string{"cert"}, args...), "--certs-dir", dir) }
	c.ok(d("create-ca", "--cluster", "prod")...)
	c.ok(d("create-node", "--node-id", "ie-1", "--country", "IE", "--host", "127.0.0.1")...)
	c.ok(d("create-user", "--name", "alice", "--roles", "reader", "--jurisdiction", "IE")...)
	node := []string{"create-node", "--node-id", "ie-2", "--host", "127.0.0.1"}
	user := []string{"create-user", "--name", "bob", "--roles", "reader"}
	cases := []struct {
		code int
		args []string
		want []string
		is   error
	}{
		{2, d("create-ca"), []string{`"cluster" not set`}, nil},
		{2, d("create-ca", "--cluster", "prod"), []string{"file exists", "ca.crt"}, pki.ErrExists},
		{7, []string{"cert", "create-ca", "--cluster", "Prod", "--certs-dir", t.TempDir()}, []string{"--cluster", `"Prod"`}, identity.ErrInvalidName},
		{7, d("create-ca", "--cluster", "x", "--lifetime", "-1h"), []string{"--lifetime"}, client.ErrInvalidArgument},
		{2, d("create-node", "--node-id", "ie-1", "--country", "IE", "--host", "10.0.0.1"), []string{"node.ie-1.crt", "--overwrite"}, pki.ErrExists},
		{2, d(append(node, "--country", "IE", "--lifetime", "forever")...), []string{"--lifetime"}, nil},
		{2, d("create-node", "--node-id", "ie-2", "--country", "IE"), []string{`"host" not set`}, nil},
		{7, d(append(node, "--country", "XX")...), []string{"--country", `"XX"`, "unknown country"}, identity.ErrUnknownCountry},
		{7, d(append(node, "--country", "IE", "--zone", "Zone A")...), []string{"--zone", `"Zone A"`}, identity.ErrInvalidLocality},
		{7, d("create-node", "--node-id", "IE 2", "--country", "IE", "--host", "::1"), []string{"--node-id", `"IE 2"`}, identity.ErrInvalidName},
		{7, d("create-node", "--node-id", "ie-2", "--country", "IE", "--host", "*.internal"), []string{"--host", `"*.internal"`}, client.ErrInvalidArgument},
		{7, d(append(user, "--jurisdiction", "EEA")...), []string{"--jurisdiction", `"EEA"`}, identity.ErrUnknownCountry},
		{7, d("create-user", "--name", "bob", "--roles", "reader,root", "--jurisdiction", "IE"), []string{"--roles", `"root"`}, identity.ErrUnknownRole},
		{7, d("create-user", "--name", "bob", "--roles", " ", "--jurisdiction", "IE"), []string{"--roles", "no roles"}, identity.ErrMissingField},
		{7, d(append(user, "--jurisdiction", "IE", "--lifetime", "0s")...), []string{"--lifetime 0s"}, nil},
		{7, d(append(user, "--jurisdiction", "IE", "--lifetime", "100000h")...), []string{"--lifetime", "outlast the CA"}, nil},
		{2, d("create-user", "--name", "alice", "--roles", "admin", "--jurisdiction", "NO"), []string{"user.alice.crt", "--overwrite"}, pki.ErrExists},
		{2, []string{"cert", "create-user", "--name", "bob", "--roles", "reader", "--jurisdiction", "IE", "--certs-dir", t.TempDir()}, []string{"no CA", "create-ca"}, pki.ErrNoCA},
		{2, []string{"cert", "show", filepath.Join(dir, "ca.key")}, []string{"ca.key", "no PEM CERTIFICATE"}, pki.ErrBadFile},
		{2, []string{"cert", "show", filepath.Join(dir, "missing.crt")}, []string{"missing.crt"}, pki.ErrBadFile},
		{2, []string{"cert", "show"}, []string{"accepts 1 arg"}, nil},
		{2, d("list", "extra"), []string{"unknown command"}, nil},
		{2, []string{"cert", "list", "--certs-dir", filepath.Join(dir, "missing")}, []string{"--certs-dir"}, nil},
		{2, d("renew"), []string{`unknown command "renew"`}, nil},
	}
	before := snapshotDir(t, dir)
	for _, tc := range cases {
		err := c.fail(tc.code, tc.args...)
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("clover %s: %q does not name %q", strings.Join(tc.args, " "), err, w)
			}
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("clover %s: %v is not %v", strings.Join(tc.args, " "), err, tc.is)
		}
	}
	if after := snapshotDir(t, dir); !reflect.DeepEqual(before, after) {
		t.Error("a refused command changed the certificates directory")
	}
	c.ok(d("create-user", "--name", "alice", "--roles", "admin", "--jurisdiction", "NO", "--overwrite")...)
	if e, err := pki.Show(filepath.Join(dir, "user.alice.crt")); err != nil || e.Identity.Country != "NO" {
		t.Errorf("after --overwrite: %+v, %v", e, err)
	}
}

// clover cert --help leaves out the flags of cluster connections, which
// the cert commands do not read.
func TestCertHelp(t *testing.T) {
	c := noCluster(t)
	for _, args := range [][]string{{"cert", "--help"}, {"cert"}, {"cert", "create-node", "--help"}} {
		out := c.ok(args...)
		if strings.Contains(out, "--endpoints") || strings.Contains(out, "--tls-cert") || !strings.Contains(out, "--certs-dir") {
			t.Errorf("clover %s:\n%s", strings.Join(args, " "), out)
		}
	}
	if out := c.ok("--help"); !strings.Contains(out, "--endpoints") || !strings.Contains(out, "cert") {
		t.Errorf("clover --help:\n%s", out)
	}
}

func loadCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	e, err := pki.Show(file)
	if err != nil || e.Problem != nil && !e.CA {
		t.Fatalf("%s: %v %v", file, err, e.Problem)
	}
	pair, err := tls.LoadX509KeyPair(file, strings.TrimSuffix(file, ".crt")+".key")
	if err != nil {
		t.Fatal(err)
	}
	return pair.Leaf
}

func tlsHandshake(t *testing.T, srvConf, cliConf *tls.Config) (srv, cli tls.ConnectionState) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	s, c := tls.Server(a, srvConf), tls.Client(b, cliConf)
	done := make(chan error, 1)
	go func() { done <- c.Handshake() }()
	if err := s.Handshake(); err != nil {
		t.Fatalf("node handshake: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("user handshake: %v", err)
	}
	return s.ConnectionState(), c.ConnectionState()
}

func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}
