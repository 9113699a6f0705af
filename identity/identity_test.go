package identity_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"net"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clover-kv/clover/identity"
	"github.com/clover-kv/clover/placement"
)

var ieLoc = placement.Locality{Country: "IE", Region: "ie-dublin", Zone: "a"}

// The OID is the project's UUID under Microsoft's GUID-derived arc, split
// as Microsoft documents (16, 16, 16, 16, 16, 24, 24 bits), plus arc 1.
func TestIdentityOIDFromUUID(t *testing.T) {
	const uuid = "e8a65eab-f620-4694-8a1c-9119f60c5e48"
	hex := strings.ReplaceAll(uuid, "-", "")
	want := asn1.ObjectIdentifier{1, 2, 840, 113556, 1, 8000, 2554}
	for _, span := range [][2]int{{0, 4}, {4, 8}, {8, 12}, {12, 16}, {16, 20}, {20, 26}, {26, 32}} {
		n, err := strconv.ParseUint(hex[span[0]:span[1]], 16, 32)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, int(n))
	}
	want = append(want, 1)
	if !identity.OID.Equal(want) {
		t.Fatalf("OID %v, want %v", identity.OID, want)
	}
}

// A certificate with an extension under 2.25.<uuid> (a 128-bit component)
// does not parse at all in crypto/x509, which is why the identity OID is
// not there. The certificate is made with a placeholder OID of the same
// encoded length, then the OID's bytes are swapped.
func TestIdentityUUIDArcUnparsable(t *testing.T) {
	uuid, _ := new(big.Int).SetString("e8a65eabf62046948a1c9119f60c5e48", 16)
	body := []byte{2*40 + 25} // 2.25
	body = append(body, base128(uuid)...)
	placeholder := asn1.ObjectIdentifier{2, 25}
	for len(placeholder) < len(body)+1 {
		placeholder = append(placeholder, 1) // one byte each
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: placeholder, Value: []byte{0x05, 0x00}}}}
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		t.Fatalf("the placeholder certificate: %v", err)
	}
	old, _ := asn1.Marshal(placeholder)
	i := bytes.Index(der, old)
	if i < 0 || len(old) != 2+len(body) {
		t.Fatalf("placeholder OID %x (len %d) not found, or not %d bytes", old, len(old), 2+len(body))
	}
	copy(der[i+2:], body)
	if _, err := x509.ParseCertificate(der); err == nil {
		t.Fatal("crypto/x509 parsed a certificate with an OID component of 128 bits")
	}
}

func base128(n *big.Int) []byte {
	var out []byte
	for v := new(big.Int).Set(n); v.Sign() > 0; v.Rsh(v, 7) {
		out = append([]byte{byte(v.Uint64() & 0x7f)}, out...)
	}
	for i := 0; i < len(out)-1; i++ {
		out[i] |= 0x80
	}
	return out
}

// What Extension and URL write, FromCertificate reads back unchanged
// through a real certificate: roles come back sorted and once each.
func TestIdentityRoundTrip(t *testing.T) {
	cases := []struct {
		in, want identity.Identity
	}{
		{in: identity.Identity{TrustDomain: "prod", Kind: identity.Node, Name: "ie-1", Locality: ieLoc}},
		{in: identity.Identity{TrustDomain: "eu.prod-2", Kind: identity.Node, Name: "n_1.x", Locality: placement.Locality{Country: "NO"}}},
		{in: identity.Identity{TrustDomain: "prod", Kind: identity.User, Name: "alice", Roles: []identity.Role{identity.RoleReader}, Country: "IE"}},
		{in: identity.Identity{TrustDomain: "prod", Kind: identity.User, Name: "bob",
			Roles: []identity.Role{identity.RoleWriter, identity.RoleAdmin, identity.RoleWriter}, Country: "US"},
			want: identity.Identity{TrustDomain: "prod", Kind: identity.User, Name: "bob",
				Roles: []identity.Role{identity.RoleAdmin, identity.RoleWriter}, Country: "US"}},
	}
	for _, tc := range cases {
		if tc.want.Kind == 0 {
			tc.want = tc.in
		}
		cert := issue(t, tc.in)
		got, err := identity.FromCertificate(cert)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("FromCertificate(issue(%+v)) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if cert.URIs[0].String() != tc.in.URI() {
			t.Errorf("URI SAN %s, URI() %s", cert.URIs[0], tc.in.URI())
		}
	}
}

// Validate (and so Extension and URL) refuses each invalid identity with
// the error of its problem.
func TestIdentityValidate(t *testing.T) {
	node := identity.Identity{TrustDomain: "prod", Kind: identity.Node, Name: "ie-1", Locality: ieLoc}
	user := identity.Identity{TrustDomain: "prod", Kind: identity.User, Name: "alice", Roles: []identity.Role{identity.RoleReader}, Country: "IE"}
	with := func(id identity.Identity, f func(*identity.Identity)) identity.Identity { f(&id); return id }
	cases := []struct {
		name string
		id   identity.Identity
		want []error
	}{
		{"empty trust domain", with(node, func(i *identity.Identity) { i.TrustDomain = "" }), []error{identity.ErrInvalidName}},
		{"upper-case trust domain", with(node, func(i *identity.Identity) { i.TrustDomain = "Prod" }), []error{identity.ErrInvalidName}},
		{"trust domain with empty label", with(node, func(i *identity.Identity) { i.TrustDomain = "a..b" }), []error{identity.ErrInvalidName}},
		{"trust domain too long", with(node, func(i *identity.Identity) { i.TrustDomain = strings.Repeat("a", 129) }), []error{identity.ErrInvalidName}},
		{"no kind", with(node, func(i *identity.Identity) { i.Kind = 0 }), []error{identity.ErrMalformedURI}},
		{"node ID with slash", with(node, func(i *identity.Identity) { i.Name = "ie/1" }), []error{identity.ErrInvalidName}},
		{"node ID too long", with(node, func(i *identity.Identity) { i.Name = strings.Repeat("a", 65) }), []error{identity.ErrInvalidName}},
		{"user name starting with a dot", with(user, func(i *identity.Identity) { i.Name = ".alice" }), []error{identity.ErrInvalidName}},
		{"node without locality", with(node, func(i *identity.Identity) { i.Locality = placement.Locality{} }), []error{identity.ErrMissingField}},
		{"node with unknown country", with(node, func(i *identity.Identity) { i.Locality.Country = "XX" }), []error{identity.ErrInvalidLocality, identity.ErrUnknownCountry}},
		{"node with bad zone", with(node, func(i *identity.Identity) { i.Locality.Zone = "A" }), []error{identity.ErrInvalidLocality}},
		{"node with roles", with(node, func(i *identity.Identity) { i.Roles = user.Roles }), []error{identity.ErrMisplacedField}},
		{"node with jurisdiction", with(node, func(i *identity.Identity) { i.Country = "IE" }), []error{identity.ErrMisplacedField}},
		{"user with locality", with(user, func(i *identity.Identity) { i.Locality = ieLoc }), []error{identity.ErrMisplacedField}},
		{"user without roles", with(user, func(i *identity.Identity) { i.Roles = nil }), []error{identity.ErrMissingField}},
		{"user with unknown role", with(user, func(i *identity.Identity) { i.Roles = []identity.Role{"root"} }), []error{identity.ErrUnknownRole}},
		{"user without jurisdiction", with(user, func(i *identity.Identity) { i.Country = "" }), []error{identity.ErrMissingField}},
		{"user with unknown jurisdiction", with(user, func(i *identity.Identity) { i.Country = "EU" }), []error{identity.ErrUnknownCountry}},
		{"user with lower-case jurisdiction", with(user, func(i *identity.Identity) { i.Country = "ie" }), []error{identity.ErrUnknownCountry}},
	}
	for _, tc := range cases {
		_, extErr := identity.Extension(tc.id)
		_, urlErr := identity.URL(tc.id)
		for _, err := range []error{tc.id.Validate(), extErr, urlErr} {
			if err == nil {
				t.Errorf("%s: accepted", tc.name)
				continue
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("%s: %v does not wrap %v", tc.name, err, w)
				}
			}
		}
	}
	for _, ok := range []identity.Identity{node, user} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
}

func TestIdentityParseRoles(t *testing.T) {
	cases := []struct {
		in   string
		want []identity.Role
		err  error
	}{
		{"reader", []identity.Role{identity.RoleReader}, nil},
		{" Writer , reader,writer", []identity.Role{identity.RoleReader, identity.RoleWriter}, nil},
		{"auditor,admin", []identity.Role{identity.RoleAdmin, identity.RoleAuditor}, nil},
		{"", nil, identity.ErrMissingField},
		{"  ", nil, identity.ErrMissingField},
		{"reader,,writer", nil, identity.ErrUnknownRole},
		{"reader,root", nil, identity.ErrUnknownRole},
		{strings.Repeat("x", 10000), nil, identity.ErrUnknownRole},
	}
	for _, tc := range cases {
		got, err := identity.ParseRoles(tc.in)
		if !errors.Is(err, tc.err) || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseRoles(%.20q) = %v, %v; want %v, %v", tc.in, got, err, tc.want, tc.err)
		}
		if err != nil && len(err.Error()) > 200 {
			t.Errorf("ParseRoles(%.20q): error of %d bytes", tc.in, len(err.Error()))
		}
	}
}

func TestIdentityNames(t *testing.T) {
	for s, want := range map[string]bool{
		"ie-1": true, "a": true, "0.x_y-z": true, strings.Repeat("a", 64): true,
		"": false, "-a": false, ".a": false, "_a": false, "A": false, "a/b": false, "a b": false, strings.Repeat("a", 65): false,
	} {
		if got := identity.ValidName(s); got != want {
			t.Errorf("ValidName(%q) = %v", s, got)
		}
	}
	for s, want := range map[string]bool{
		"prod": true, "eu.prod-2": true, "0": true, strings.Repeat("a", 63) + "." + strings.Repeat("b", 64): true,
		"": false, "Prod": false, "-prod": false, "prod-": false, "a..b": false, ".prod": false, "prod.": false,
		"pr_od": false, "a:1": false, strings.Repeat("a", 129): false,
	} {
		if got := identity.ValidTrustDomain(s); got != want {
			t.Errorf("ValidTrustDomain(%q) = %v", s, got)
		}
	}
}

// URI SANs that are not exactly spiffe://<trust-domain>/<node|user>/<name>
// are refused, whatever the extension says.
func TestIdentityMalformedURIs(t *testing.T) {
	ext, err := identity.Extension(identity.Identity{TrustDomain: "prod", Kind: identity.Node, Name: "ie-1", Locality: ieLoc})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"spiffe://prod/node/ie-1?x=1", "spiffe://prod/node/ie-1?", "spiffe://prod/node/ie-1#f", "spiffe://u@prod/node/ie-1",
		"spiffe://prod/node/ie-1/", "spiffe://prod//node/ie-1", "spiffe://prod/node/", "spiffe://prod/node", "spiffe://prod",
		"spiffe:///node/ie-1", "spiffe://PROD/node/ie-1", "spiffe://prod/node/ie%2D1", "spiffe://prod/Node/ie-1",
		"spiffe:prod/node/ie-1", "urn:uuid:e8a65eab-f620-4694-8a1c-9119f60c5e48", "/node/ie-1",
	} {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		_, err = identity.FromCertificate(&x509.Certificate{URIs: []*url.URL{u}, Extensions: []pkix.Extension{ext}})
		if !errors.Is(err, identity.ErrMalformedURI) {
			t.Errorf("%s: %v, want ErrMalformedURI", s, err)
		}
	}
}

func TestIdentityTrustDomainOfCA(t *testing.T) {
	uri := func(s string) []*url.URL { u, _ := url.Parse(s); return []*url.URL{u} }
	ca := func(uris []*url.URL) *x509.Certificate {
		return &x509.Certificate{IsCA: true, BasicConstraintsValid: true, URIs: uris}
	}
	cases := []struct {
		cert *x509.Certificate
		want string
		err  error
	}{
		{ca(uri("spiffe://prod")), "prod", nil},
		{nil, "", identity.ErrNoIdentity},
		{&x509.Certificate{URIs: uri("spiffe://prod")}, "", identity.ErrNotCA},
		{ca(nil), "", identity.ErrNoIdentity},
		{ca(append(uri("spiffe://prod"), uri("spiffe://other")...)), "", identity.ErrSeveralIdentities},
		{ca(uri("spiffe://prod/")), "", identity.ErrMalformedURI},
		{ca(uri("spiffe://prod/node/ie-1")), "", identity.ErrMalformedURI},
		{ca(uri("https://prod")), "", identity.ErrMalformedURI},
		{ca(uri("spiffe://Prod")), "", identity.ErrInvalidName},
	}
	for i, tc := range cases {
		got, err := identity.TrustDomainOfCA(tc.cert)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("case %d: %q, %v; want %q, %v", i, got, err, tc.want, tc.err)
		}
	}
	if u, err := identity.CAURI("prod"); err != nil || u.String() != "spiffe://prod" {
		t.Errorf("CAURI(prod) = %v, %v", u, err)
	}
	if _, err := identity.CAURI("Prod"); !errors.Is(err, identity.ErrInvalidName) {
		t.Errorf("CAURI(Prod): %v", err)
	}
}

// Over a real mutual-TLS connection, the server reads the client's
// identity from its connection state; without verification it refuses.
func TestIdentityFromConnectionState(t *testing.T) {
	caKey := newKey(t)
	caURI, _ := identity.CAURI("prod")
	ca := sign(t, &x509.Certificate{SerialNumber: big.NewInt(1), URIs: []*url.URL{caURI}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}, nil, caKey, caKey)
	alice := identity.Identity{TrustDomain: "prod", Kind: identity.User, Name: "alice", Roles: []identity.Role{identity.RoleReader}, Country: "IE"}
	srvID := identity.Identity{TrustDomain: "prod", Kind: identity.Node, Name: "ie-1", Locality: ieLoc}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srvConf := &tls.Config{Certificates: []tls.Certificate{leaf(t, srvID, ca, caKey)}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	cliConf := &tls.Config{Certificates: []tls.Certificate{leaf(t, alice, ca, caKey)}, RootCAs: pool, ServerName: "127.0.0.1"}
	a, b := net.Pipe()
	srv, cli := tls.Server(a, srvConf), tls.Client(b, cliConf)
	done := make(chan error, 1)
	go func() { done <- cli.Handshake() }()
	if err := srv.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, err := identity.FromConnectionState(srv.ConnectionState(), "prod")
	if err != nil || !reflect.DeepEqual(got, alice) {
		t.Fatalf("server sees %+v, %v; want %+v", got, err, alice)
	}
	if got, err := identity.FromConnectionState(cli.ConnectionState(), "prod"); err != nil || got.Name != "ie-1" {
		t.Fatalf("client sees %+v, %v", got, err)
	}
	if _, err := identity.FromConnectionState(srv.ConnectionState(), "other"); !errors.Is(err, identity.ErrWrongTrustDomain) {
		t.Errorf("other trust domain: %v", err)
	}
	unverified := srv.ConnectionState()
	unverified.VerifiedChains = nil
	if _, err := identity.FromConnectionState(unverified, "prod"); !errors.Is(err, identity.ErrNotVerified) {
		t.Errorf("peer certificate without a verified chain: %v", err)
	}
}

func TestIdentityString(t *testing.T) {
	n := identity.Identity{TrustDomain: "prod", Kind: identity.Node, Name: "ie-1", Locality: ieLoc}
	u := identity.Identity{TrustDomain: "prod", Kind: identity.User, Name: "alice", Roles: []identity.Role{identity.RoleWriter, identity.RoleReader}, Country: "IE"}
	for got, want := range map[string]string{
		n.String(): "spiffe://prod/node/ie-1 [country=IE,region=ie-dublin,zone=a]",
		u.String(): "spiffe://prod/user/alice [roles=reader,writer jurisdiction=IE]",
		u.URI():    "spiffe://prod/user/alice",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	if !u.HasRole(identity.RoleWriter) || u.HasRole(identity.RoleAdmin) {
		t.Errorf("HasRole of %v", u)
	}
}

// issue signs a certificate of id with a fresh self-signed CA and parses it.
func issue(t *testing.T, id identity.Identity) *x509.Certificate {
	t.Helper()
	key := newKey(t)
	ca := sign(t, &x509.Certificate{SerialNumber: big.NewInt(1), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}, nil, key, key)
	return leaf(t, id, ca, key).Leaf
}

// leaf is a certificate of id for 127.0.0.1, signed by ca.
func leaf(t *testing.T, id identity.Identity, ca *x509.Certificate, caKey *ecdsa.PrivateKey) tls.Certificate {
	t.Helper()
	ext, err := identity.Extension(id)
	if err != nil {
		t.Fatal(err)
	}
	u, err := identity.URL(id)
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	cert := sign(t, &x509.Certificate{SerialNumber: big.NewInt(2), URIs: []*url.URL{u}, ExtraExtensions: []pkix.Extension{ext},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}, ca, key, caKey)
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
}

func sign(t *testing.T, tmpl, parent *x509.Certificate, key, signer *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
