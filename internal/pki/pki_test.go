package pki_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/clover-kv/clover/identity"
	"github.com/clover-kv/clover/internal/pki"
	"github.com/clover-kv/clover/internal/tlsfiles"
	"github.com/clover-kv/clover/placement"
)

var ieLoc = placement.Locality{Country: "IE", Region: "ie-dublin", Zone: "a"}

// newPKI makes a CA of trust domain prod, node ie-1 and user alice in a
// temporary directory.
func newPKI(t *testing.T) (dir string, ca, node, user pki.Issued) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "certs")
	var err error
	if ca, err = pki.CreateCA(dir, "prod", 0); err != nil {
		t.Fatal(err)
	}
	if node, err = pki.CreateNode(dir, "ie-1", ieLoc, []string{"127.0.0.1", "IE-1.internal", "::1", "127.0.0.1"}, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	if user, err = pki.CreateUser(dir, "alice", []identity.Role{identity.RoleReader, identity.RoleWriter}, "IE", pki.Options{}); err != nil {
		t.Fatal(err)
	}
	return dir, ca, node, user
}

// The files are where and as documented, each certificate reads back as
// the identity asked for and chains to the CA for its key usage.
func TestPKICreate(t *testing.T) {
	dir, ca, node, user := newPKI(t)
	for file, mode := range map[string]fs.FileMode{
		dir: fs.ModeDir | 0o700, "ca.crt": 0o644, "ca.key": 0o600, "node.ie-1.crt": 0o644, "node.ie-1.key": 0o600,
		"user.alice.crt": 0o644, "user.alice.key": 0o600,
	} {
		st, err := os.Stat(filepath.Join(dir, file))
		if file == dir {
			st, err = os.Stat(dir)
		}
		if err != nil || st.Mode() != mode {
			t.Errorf("%s: %v, %v; want mode %v", file, st.Mode(), err, mode)
		}
	}
	if td, err := identity.TrustDomainOfCA(ca.Certificate); err != nil || td != "prod" ||
		!ca.Certificate.MaxPathLenZero || ca.Certificate.MaxPathLen != 0 {
		t.Errorf("CA: trust domain %q, %v, path length %d", td, err, ca.Certificate.MaxPathLen)
	}
	wantNode := identity.Identity{TrustDomain: "prod", Kind: identity.Node, Name: "ie-1", Locality: ieLoc}
	wantUser := identity.Identity{TrustDomain: "prod", Kind: identity.User, Name: "alice",
		Roles: []identity.Role{identity.RoleReader, identity.RoleWriter}, Country: "IE"}
	for _, c := range []struct {
		issued pki.Issued
		want   identity.Identity
		usage  x509.ExtKeyUsage
	}{{node, wantNode, x509.ExtKeyUsageServerAuth}, {node, wantNode, x509.ExtKeyUsageClientAuth}, {user, wantUser, x509.ExtKeyUsageClientAuth}} {
		cert := readCert(t, c.issued.CertFile)
		if got, err := identity.FromCertificate(cert); err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: identity %+v, %v; want %+v", c.issued.CertFile, got, err, c.want)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool(ca.Certificate), KeyUsages: []x509.ExtKeyUsage{c.usage}}); err != nil {
			t.Errorf("%s does not chain to the CA for usage %v: %v", c.issued.CertFile, c.usage, err)
		}
	}
	if _, err := user.Certificate.Verify(x509.VerifyOptions{Roots: pool(ca.Certificate), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("a user certificate is valid for server authentication")
	}
	nc := node.Certificate
	if !slices.Equal(nc.DNSNames, []string{"ie-1.internal"}) || len(nc.IPAddresses) != 2 ||
		!nc.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || !nc.IPAddresses[1].Equal(net.IPv6loopback) {
		t.Errorf("node SANs: DNS %v, IP %v", nc.DNSNames, nc.IPAddresses)
	}
	for _, c := range []struct {
		cert *x509.Certificate
		life time.Duration
	}{{ca.Certificate, pki.DefaultCALifetime}, {nc, pki.DefaultLeafLifetime}, {user.Certificate, pki.DefaultLeafLifetime}} {
		// Valid from an hour before issue; times have whole seconds.
		if d := c.cert.NotAfter.Sub(c.cert.NotBefore) - time.Hour - c.life; d < -time.Second || d > time.Second {
			t.Errorf("%s: valid %v, want %v plus an hour", c.cert.Subject, c.cert.NotAfter.Sub(c.cert.NotBefore), c.life)
		}
	}
}

// A node's files serve mutual TLS (internal/tlsfiles) to a user's, and
// each side reads the other's identity from the connection.
func TestPKIHandshake(t *testing.T) {
	dir, ca, node, user := newPKI(t)
	srvConf, _, err := tlsfiles.Node(node.CertFile, node.KeyFile, ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	cliConf, err := tlsfiles.Client(user.CertFile, user.KeyFile, filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	cliConf.ServerName = "127.0.0.1"
	srv, cli := handshake(t, srvConf, cliConf)
	if id, err := identity.FromConnectionState(srv, "prod"); err != nil || id.Name != "alice" || !id.HasRole(identity.RoleWriter) {
		t.Errorf("the node sees %+v, %v", id, err)
	}
	if id, err := identity.FromConnectionState(cli, "prod"); err != nil || id.Name != "ie-1" || id.Locality != ieLoc {
		t.Errorf("the user sees %+v, %v", id, err)
	}
}

func handshake(t *testing.T, srvConf, cliConf *tls.Config) (srv, cli tls.ConnectionState) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	s, c := tls.Server(a, srvConf), tls.Client(b, cliConf)
	done := make(chan error, 1)
	go func() { done <- c.Handshake() }()
	if err := s.Handshake(); err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	return s.ConnectionState(), c.ConnectionState()
}

// A CA is never overwritten; a leaf only with Overwrite.
func TestPKINoOverwrite(t *testing.T) {
	dir, ca, node, _ := newPKI(t)
	before := snapshot(t, dir)
	if _, err := pki.CreateCA(dir, "prod", 0); !errors.Is(err, pki.ErrExists) {
		t.Errorf("second CA: %v, want ErrExists", err)
	}
	if _, err := pki.CreateNode(dir, "ie-1", ieLoc, []string{"127.0.0.1"}, pki.Options{}); !errors.Is(err, pki.ErrExists) {
		t.Errorf("second node ie-1: %v, want ErrExists", err)
	}
	if _, err := pki.CreateUser(dir, "alice", []identity.Role{identity.RoleAdmin}, "NO", pki.Options{}); !errors.Is(err, pki.ErrExists) {
		t.Errorf("second user alice: %v, want ErrExists", err)
	}
	if after := snapshot(t, dir); !reflect.DeepEqual(before, after) {
		t.Fatal("a refused create changed the directory")
	}
	// Only the key left: the CA is still refused.
	if err := os.Remove(ca.CertFile); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.CreateCA(dir, "prod", 0); !errors.Is(err, pki.ErrExists) {
		t.Errorf("CA over a lone ca.key: %v, want ErrExists", err)
	}
	if err := os.WriteFile(ca.CertFile, before["ca.crt"], 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := pki.CreateNode(dir, "ie-1", placement.Locality{Country: "IE"}, []string{"10.0.0.1"}, pki.Options{Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	if again.Certificate.SerialNumber.Cmp(node.Certificate.SerialNumber) == 0 || !bytes.Equal(snapshot(t, dir)["node.ie-1.crt"], pemOf(t, again.CertFile)) {
		t.Error("--overwrite did not replace the node's certificate")
	}
	if id, err := identity.FromCertificate(readCert(t, again.CertFile)); err != nil || id.Locality != (placement.Locality{Country: "IE"}) {
		t.Errorf("overwritten node: %+v, %v", id, err)
	}
	for f, mode := range map[string]fs.FileMode{again.CertFile: 0o644, again.KeyFile: 0o600} {
		if st, err := os.Stat(f); err != nil || st.Mode() != mode {
			t.Errorf("%s after overwrite: %v, %v", f, st.Mode(), err)
		}
	}
	if _, err := tlsfiles.Client(again.CertFile, again.KeyFile, ca.CertFile); err != nil {
		t.Errorf("overwritten key and certificate do not match: %v", err)
	}
}

// Each bad value is an *InputError naming its field, wrapping the identity
// sentinel of the problem, and nothing is written.
func TestPKIBadInput(t *testing.T) {
	dir, _, _, _ := newPKI(t)
	before := snapshot(t, dir)
	node := func(id string, loc placement.Locality, hosts ...string) func() error {
		return func() error { _, err := pki.CreateNode(dir, id, loc, hosts, pki.Options{}); return err }
	}
	user := func(name, roles, country string, life time.Duration) func() error {
		return func() error {
			var rs []identity.Role
			if roles != "" {
				rs = []identity.Role{identity.Role(roles)}
			}
			_, err := pki.CreateUser(dir, name, rs, country, pki.Options{Lifetime: life})
			return err
		}
	}
	cases := []struct {
		name  string
		do    func() error
		field pki.Field
		also  error
	}{
		{"CA of a bad trust domain", func() error { _, err := pki.CreateCA(t.TempDir(), "Prod", 0); return err }, pki.FieldTrustDomain, identity.ErrInvalidName},
		{"CA of negative lifetime", func() error { _, err := pki.CreateCA(t.TempDir(), "prod", -time.Hour); return err }, pki.FieldLifetime, nil},
		{"node ID with a space", node("ie 1", ieLoc, "127.0.0.1"), pki.FieldName, identity.ErrInvalidName},
		{"node ID as a path", node("../ca", ieLoc, "127.0.0.1"), pki.FieldName, identity.ErrInvalidName},
		{"node in an unknown country", node("ie-3", placement.Locality{Country: "XX"}, "127.0.0.1"), pki.FieldLocality, identity.ErrUnknownCountry},
		{"node without a country", node("ie-3", placement.Locality{Region: "ie-dublin"}, "127.0.0.1"), pki.FieldLocality, identity.ErrInvalidLocality},
		{"node with a bad zone", node("ie-3", placement.Locality{Country: "IE", Zone: "Zone A"}, "127.0.0.1"), pki.FieldLocality, identity.ErrInvalidLocality},
		{"node without a locality", node("ie-3", placement.Locality{}, "127.0.0.1"), pki.FieldLocality, identity.ErrMissingField},
		{"node without hosts", node("ie-3", ieLoc), pki.FieldHosts, nil},
		{"node with a wildcard host", node("ie-3", ieLoc, "*.internal"), pki.FieldHosts, nil},
		{"node with a bad host", node("ie-3", ieLoc, "127.0.0.1", "a_b.internal"), pki.FieldHosts, nil},
		{"user name with upper case", user("Alice", "reader", "IE", 0), pki.FieldName, identity.ErrInvalidName},
		{"user without roles", user("bob", "", "IE", 0), pki.FieldRoles, identity.ErrMissingField},
		{"user with an unknown role", user("bob", "root", "IE", 0), pki.FieldRoles, identity.ErrUnknownRole},
		{"user in an unknown country", user("bob", "reader", "XX", 0), pki.FieldCountry, identity.ErrUnknownCountry},
		{"user in a jurisdiction, not a country", user("bob", "reader", "EEA", 0), pki.FieldCountry, identity.ErrUnknownCountry},
		{"user without a jurisdiction", user("bob", "reader", "", 0), pki.FieldCountry, identity.ErrMissingField},
		{"user outlasting the CA", user("bob", "reader", "IE", pki.DefaultCALifetime+time.Hour), pki.FieldLifetime, nil},
		{"user of negative lifetime", user("bob", "reader", "IE", -time.Second), pki.FieldLifetime, nil},
	}
	for _, tc := range cases {
		err := tc.do()
		var in *pki.InputError
		if !errors.As(err, &in) || in.Field != tc.field || !errors.Is(err, pki.ErrInvalidInput) || (tc.also != nil && !errors.Is(err, tc.also)) {
			t.Errorf("%s: %v; want an InputError of %s wrapping %v", tc.name, err, tc.field, tc.also)
		}
	}
	if after := snapshot(t, dir); !reflect.DeepEqual(before, after) {
		t.Error("refused input changed the directory")
	}
}

// Without a usable CA nothing is issued.
func TestPKINoCA(t *testing.T) {
	empty := t.TempDir()
	if _, err := pki.CreateNode(empty, "ie-1", ieLoc, []string{"127.0.0.1"}, pki.Options{}); !errors.Is(err, pki.ErrNoCA) {
		t.Errorf("empty directory: %v", err)
	}
	dir, _, _, _ := newPKI(t)
	other, _, _, _ := newPKI(t)
	if err := os.Rename(filepath.Join(other, "ca.key"), filepath.Join(dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	_, err := pki.CreateUser(dir, "bob", []identity.Role{identity.RoleReader}, "IE", pki.Options{})
	if !errors.Is(err, pki.ErrNoCA) || !errors.Is(err, pki.ErrBadFile) {
		t.Errorf("CA key of another CA: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.CreateUser(dir, "bob", []identity.Role{identity.RoleReader}, "IE", pki.Options{}); !errors.Is(err, pki.ErrNoCA) {
		t.Errorf("no CA key: %v", err)
	}
}

// List describes each certificate of the directory: the CA first, then by
// name, with identity, expiry and whether it chains to the directory's CA;
// Show describes one.
func TestPKIListAndShow(t *testing.T) {
	dir, ca, node, user := newPKI(t)
	_, _, otherNode, _ := newPKI(t)
	if err := os.WriteFile(filepath.Join(dir, "node.foreign.crt"), pemOf(t, otherNode.CertFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "garbage.crt"), []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	entries, err := pki.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		files = append(files, filepath.Base(e.File))
	}
	if want := []string{"ca.crt", "garbage.crt", "node.foreign.crt", "node.ie-1.crt", "user.alice.crt"}; !slices.Equal(files, want) {
		t.Fatalf("List: %v, want %v", files, want)
	}
	caE, garbage, foreign, nodeE, userE := entries[0], entries[1], entries[2], entries[3], entries[4]
	if !caE.CA || caE.TrustDomain != "prod" || caE.Problem != nil || !caE.ChainsToCA || !caE.NotAfter.Equal(ca.Certificate.NotAfter) {
		t.Errorf("CA entry %+v", caE)
	}
	if !errors.Is(garbage.Problem, pki.ErrBadFile) {
		t.Errorf("garbage entry %+v", garbage)
	}
	if foreign.ChainsToCA || foreign.Problem != nil || foreign.Identity.Name != "ie-1" {
		t.Errorf("another CA's node: %+v", foreign)
	}
	if !nodeE.ChainsToCA || nodeE.Identity.Locality != ieLoc || !slices.Equal(nodeE.Usage, []string{"server", "client"}) ||
		!slices.Equal(nodeE.IPAddresses, []string{"127.0.0.1", "::1"}) || !nodeE.NotAfter.Equal(node.Certificate.NotAfter) {
		t.Errorf("node entry %+v", nodeE)
	}
	if !userE.ChainsToCA || userE.Identity.Country != "IE" || !slices.Equal(userE.Usage, []string{"client"}) {
		t.Errorf("user entry %+v", userE)
	}
	shown, err := pki.Show(user.CertFile)
	if err != nil || !reflect.DeepEqual(shown, userE) {
		t.Errorf("Show = %+v, %v; want %+v", shown, err, userE)
	}
	for _, f := range []string{filepath.Join(dir, "garbage.crt"), filepath.Join(dir, "missing.crt"), user.KeyFile} {
		if _, err := pki.Show(f); !errors.Is(err, pki.ErrBadFile) {
			t.Errorf("Show(%s): %v", filepath.Base(f), err)
		}
	}
	if _, err := pki.List(filepath.Join(dir, "missing")); err == nil {
		t.Error("List of a missing directory succeeded")
	}
}

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	e, err := tls.LoadX509KeyPair(file, file[:len(file)-len(".crt")]+".key")
	if err != nil {
		t.Fatal(err)
	}
	return e.Leaf
}

func pemOf(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// snapshot maps each file name of dir to its contents.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		out[e.Name()] = pemOf(t, filepath.Join(dir, e.Name()))
	}
	return out
}

func pool(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}
