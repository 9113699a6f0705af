package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"flag"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clover-kv/clover/placement"
)

var update = flag.Bool("update", false, "regenerate testdata/*.pem")

// galleryDomain is the trust domain of the gallery's CA.
const galleryDomain = "clover-test"

// galleryCase is one certificate of testdata/ and what reading it gives.
type galleryCase struct {
	file string
	uris []string
	exts []pkix.Extension
	// want is the identity of a good certificate; errs the sentinels a
	// wrong one's error wraps, and no others.
	want *Identity
	errs []error
	// parseFails: crypto/x509 itself refuses the certificate.
	// verifyFails: chain verification refuses it (an unknown critical
	// extension); FromCertificate refuses it too.
	parseFails, verifyFails bool
}

var (
	nodeURI = "spiffe://" + galleryDomain + "/node/ie-1"
	userURI = "spiffe://" + galleryDomain + "/user/alice"
	ieLoc   = "country=IE,region=ie-dublin,zone=a"
)

// galleryCases: good certificates first, then each defect.
var galleryCases = []galleryCase{
	{file: "good-node.pem", uris: []string{nodeURI}, exts: ext(node(ieLoc)),
		want: &Identity{TrustDomain: galleryDomain, Kind: Node, Name: "ie-1", Locality: placement.Locality{Country: "IE", Region: "ie-dublin", Zone: "a"}}},
	{file: "good-node-country-only.pem", uris: []string{"spiffe://" + galleryDomain + "/node/no-1"}, exts: ext(node("country=NO")),
		want: &Identity{TrustDomain: galleryDomain, Kind: Node, Name: "no-1", Locality: placement.Locality{Country: "NO"}}},
	{file: "good-user.pem", uris: []string{userURI}, exts: ext(user("reader,writer", "IE")),
		want: &Identity{TrustDomain: galleryDomain, Kind: User, Name: "alice", Roles: []Role{RoleReader, RoleWriter}, Country: "IE"}},
	{file: "good-user-all-roles.pem", uris: []string{"spiffe://" + galleryDomain + "/user/ops_1.b-c"}, exts: ext(user("admin,auditor,reader,writer", "DE")),
		want: &Identity{TrustDomain: galleryDomain, Kind: User, Name: "ops_1.b-c", Roles: Roles(), Country: "DE"}},

	{file: "no-uri-san.pem", exts: ext(node(ieLoc)), errs: []error{ErrNoIdentity}},
	{file: "no-extension.pem", uris: []string{nodeURI}, errs: []error{ErrNoIdentity}},
	{file: "two-uri-sans.pem", uris: []string{nodeURI, "spiffe://" + galleryDomain + "/node/ie-2"}, exts: ext(node(ieLoc)), errs: []error{ErrSeveralIdentities}},
	{file: "extension-twice.pem", uris: []string{nodeURI}, exts: ext(node(ieLoc), node(ieLoc)), parseFails: true, errs: []error{ErrSeveralIdentities}},
	{file: "not-spiffe.pem", uris: []string{"https://" + galleryDomain + "/node/ie-1"}, exts: ext(node(ieLoc)), errs: []error{ErrMalformedURI}},
	{file: "path-not-node-or-user.pem", uris: []string{"spiffe://" + galleryDomain + "/admin/ie-1"}, exts: ext(node(ieLoc)), errs: []error{ErrMalformedURI}},
	{file: "path-too-deep.pem", uris: []string{nodeURI + "/extra"}, exts: ext(node(ieLoc)), errs: []error{ErrMalformedURI}},
	{file: "uri-with-port.pem", uris: []string{"spiffe://" + galleryDomain + ":443/node/ie-1"}, exts: ext(node(ieLoc)), errs: []error{ErrMalformedURI}},
	{file: "bad-node-id.pem", uris: []string{"spiffe://" + galleryDomain + "/node/IE_1"}, exts: ext(node(ieLoc)), errs: []error{ErrMalformedURI, ErrInvalidName}},
	{file: "node-id-too-long.pem", uris: []string{"spiffe://" + galleryDomain + "/node/" + strings.Repeat("n", 4000)}, exts: ext(node(ieLoc)), errs: []error{ErrMalformedURI, ErrInvalidName}},
	{file: "bad-trust-domain.pem", uris: []string{"spiffe://-clover/node/ie-1"}, exts: ext(node(ieLoc)), errs: []error{ErrMalformedURI, ErrInvalidName}},
	{file: "wrong-trust-domain.pem", uris: []string{"spiffe://other-cluster/node/ie-1"}, exts: ext(node(ieLoc)), errs: []error{ErrWrongTrustDomain}},
	{file: "purpose-user-path-node.pem", uris: []string{nodeURI}, exts: ext(user("reader", "IE")), errs: []error{ErrPurposeMismatch}},
	{file: "purpose-node-path-user.pem", uris: []string{userURI}, exts: ext(node(ieLoc)), errs: []error{ErrPurposeMismatch}},
	{file: "unknown-purpose.pem", uris: []string{nodeURI}, exts: ext(der(intEl(1), utf8El("admin"), ctxEl(0, ieLoc))), errs: []error{ErrMalformedExtension}},
	{file: "unknown-role.pem", uris: []string{userURI}, exts: ext(user("reader,root", "IE")), errs: []error{ErrUnknownRole}},
	{file: "roles-unsorted.pem", uris: []string{userURI}, exts: ext(user("writer,reader", "IE")), errs: []error{ErrMalformedExtension}},
	{file: "roles-twice.pem", uris: []string{userURI}, exts: ext(user("reader,reader", "IE")), errs: []error{ErrMalformedExtension}},
	{file: "unknown-country.pem", uris: []string{userURI}, exts: ext(user("reader", "XX")), errs: []error{ErrUnknownCountry}},
	{file: "lower-case-country.pem", uris: []string{userURI}, exts: ext(user("reader", "ie")), errs: []error{ErrUnknownCountry}},
	{file: "bad-locality.pem", uris: []string{nodeURI}, exts: ext(node("country=IE,zone=Zone A")), errs: []error{ErrInvalidLocality}},
	{file: "locality-unknown-country.pem", uris: []string{nodeURI}, exts: ext(node("country=XX")), errs: []error{ErrInvalidLocality, ErrUnknownCountry}},
	{file: "locality-not-canonical.pem", uris: []string{nodeURI}, exts: ext(node("zone=a,country=IE,region=ie-dublin")), errs: []error{ErrInvalidLocality}},
	{file: "user-with-locality.pem", uris: []string{userURI}, exts: ext(der(intEl(1), utf8El("user"), ctxEl(0, ieLoc), ctxEl(1, "reader"), ctxEl(2, "IE"))), errs: []error{ErrMisplacedField}},
	{file: "node-with-roles.pem", uris: []string{nodeURI}, exts: ext(der(intEl(1), utf8El("node"), ctxEl(0, ieLoc), ctxEl(1, "admin"))), errs: []error{ErrMisplacedField}},
	{file: "node-without-locality.pem", uris: []string{nodeURI}, exts: ext(der(intEl(1), utf8El("node"))), errs: []error{ErrMissingField}},
	{file: "user-without-roles.pem", uris: []string{userURI}, exts: ext(der(intEl(1), utf8El("user"), ctxEl(2, "IE"))), errs: []error{ErrMissingField}},
	{file: "user-without-jurisdiction.pem", uris: []string{userURI}, exts: ext(der(intEl(1), utf8El("user"), ctxEl(1, "reader"))), errs: []error{ErrMissingField}},
	{file: "version-2.pem", uris: []string{nodeURI}, exts: ext(der(intEl(2), utf8El("node"), ctxEl(0, ieLoc))), errs: []error{ErrUnsupportedVersion}},
	{file: "extension-not-der.pem", uris: []string{nodeURI}, exts: ext([]byte("country=IE")), errs: []error{ErrMalformedExtension}},
	{file: "extension-trailing-bytes.pem", uris: []string{nodeURI}, exts: ext(append(node(ieLoc), 0)), errs: []error{ErrMalformedExtension}},
	{file: "extension-printable-string.pem", uris: []string{nodeURI}, exts: ext(der(intEl(1), printableEl("node"), ctxEl(0, ieLoc))), errs: []error{ErrMalformedExtension}},
	{file: "extension-empty-field.pem", uris: []string{nodeURI}, exts: ext(der(intEl(1), utf8El("node"), ctxEl(0, ieLoc), ctxEl(1, ""))), errs: []error{ErrMalformedExtension}},
	{file: "extension-critical.pem", uris: []string{nodeURI}, exts: []pkix.Extension{{Id: OID, Critical: true, Value: node(ieLoc)}}, verifyFails: true, errs: []error{ErrMalformedExtension}},
}

// allSentinels are the errors a wrong certificate's error is checked
// against: it wraps those of its case and none of the others.
var allSentinels = []error{ErrNoIdentity, ErrSeveralIdentities, ErrMalformedURI, ErrInvalidName, ErrWrongTrustDomain,
	ErrMalformedExtension, ErrUnsupportedVersion, ErrPurposeMismatch, ErrUnknownRole, ErrUnknownCountry,
	ErrInvalidLocality, ErrMisplacedField, ErrMissingField, ErrNotCA, ErrNotVerified}

// TestGallery reads every certificate of testdata/ as a node would, after
// verifying its chain against the gallery's CA: each good one gives its
// identity, each wrong one fails with the error of its defect only, in a
// message of bounded length. go test -run TestGallery -update regenerates
// the files (valid for 100 years).
func TestGallery(t *testing.T) {
	if *update {
		writeGallery(t)
	}
	ca := readPEM(t, "ca.pem")
	if td, err := TrustDomainOfCA(ca); err != nil || td != galleryDomain {
		t.Fatalf("TrustDomainOfCA(ca.pem) = %q, %v", td, err)
	}
	checkGalleryFiles(t)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, tc := range galleryCases {
		t.Run(strings.TrimSuffix(tc.file, ".pem"), func(t *testing.T) {
			id, err := readGalleryCase(t, tc, roots)
			if tc.want != nil {
				if err != nil || !reflect.DeepEqual(id, *tc.want) {
					t.Fatalf("got %+v, %v; want %+v", id, err, *tc.want)
				}
				return
			}
			checkErr(t, err, tc.errs)
		})
	}
}

// readGalleryCase verifies the file's chain and reads its identity; a
// certificate crypto/x509 refuses is read from its parsed twin (the
// extension listed twice in a certificate built in memory).
func readGalleryCase(t *testing.T, tc galleryCase, roots *x509.CertPool) (Identity, error) {
	t.Helper()
	block := readBlock(t, tc.file)
	cert, err := x509.ParseCertificate(block)
	if tc.parseFails {
		if err == nil {
			t.Fatal("crypto/x509 parsed it; the case expects it refused")
		}
		good := readPEM(t, "good-node.pem")
		twin := *good
		twin.Extensions = append(slices.Clone(good.Extensions), ext(node(ieLoc))...)
		return FromCertificate(&twin)
	}
	if err != nil {
		t.Fatal(err)
	}
	chains, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if tc.verifyFails {
		if err == nil {
			t.Fatal("chain verification accepted it; the case expects it refused")
		}
		return FromCertificate(cert)
	}
	if err != nil {
		t.Fatalf("verify chain: %v", err)
	}
	return FromConnectionState(tls.ConnectionState{VerifiedChains: chains}, galleryDomain)
}

// checkErr fails t unless err wraps exactly the sentinels of want among
// allSentinels and its message stays short.
func checkErr(t *testing.T, err error, want []error) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want %v", want)
	}
	for _, s := range allSentinels {
		if got, w := errors.Is(err, s), slices.Contains(want, s); got != w {
			t.Errorf("errors.Is(%q, %v) = %v, want %v", err, s, got, w)
		}
	}
	t.Log(err)
	if len(err.Error()) > 400 {
		t.Errorf("error of %d bytes: %.100q...", len(err.Error()), err)
	}
}

// checkGalleryFiles fails t if testdata/ holds a certificate no case
// covers, or misses one.
func checkGalleryFiles(t *testing.T) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.pem"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ca.pem"}
	for _, tc := range galleryCases {
		want = append(want, tc.file)
	}
	var got []string
	for _, f := range files {
		got = append(got, filepath.Base(f))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("testdata holds %v, the cases %v (run go test -run TestGallery -update)", got, want)
	}
}

// writeGallery makes a new CA and every case's certificate, signed by it.
func writeGallery(t *testing.T) {
	t.Helper()
	old, _ := filepath.Glob(filepath.Join("testdata", "*.pem"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	caKey := newKey(t)
	caURI, err := CAURI(galleryDomain)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := template("gallery CA")
	caTmpl.URIs = []*url.URL{caURI}
	caTmpl.IsCA, caTmpl.BasicConstraintsValid, caTmpl.MaxPathLenZero = true, true, true
	caTmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	caDER := create(t, caTmpl, caTmpl, caKey, caKey)
	writePEM(t, "ca.pem", caDER)
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range galleryCases {
		tmpl := template(strings.TrimSuffix(tc.file, ".pem"))
		for _, s := range tc.uris {
			u, err := url.Parse(s)
			if err != nil {
				t.Fatal(err)
			}
			tmpl.URIs = append(tmpl.URIs, u)
		}
		tmpl.ExtraExtensions = tc.exts
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}
		writePEM(t, tc.file, create(t, tmpl, ca, newKey(t), caKey))
	}
}

var serial int64

// template is a certificate named cn valid for 100 years from an hour ago.
func template(cn string) *x509.Certificate {
	serial++
	now := time.Now()
	return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(100, 0, 0)}
}

func create(t *testing.T, tmpl, parent *x509.Certificate, key, signer *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatalf("%s: %v", tmpl.Subject.CommonName, err)
	}
	return der
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t *testing.T, name string, der []byte) {
	t.Helper()
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join("testdata", name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readBlock(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("%v (run go test -run TestGallery -update)", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s holds no PEM certificate", name)
	}
	return block.Bytes
}

func readPEM(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(readBlock(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

// ext wraps extension values as Clover extensions, non-critical.
func ext(values ...[]byte) []pkix.Extension {
	var out []pkix.Extension
	for _, v := range values {
		out = append(out, pkix.Extension{Id: OID, Value: v})
	}
	return out
}

// node and user are well-encoded version-1 values with the given fields,
// whether valid or not.
func node(locality string) []byte {
	return der(intEl(1), utf8El("node"), ctxEl(0, locality))
}

func user(roles, country string) []byte {
	return der(intEl(1), utf8El("user"), ctxEl(1, roles), ctxEl(2, country))
}

// der is a SEQUENCE of the encoded elements.
func der(elems ...[]byte) []byte {
	return mustMarshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: slices.Concat(elems...)})
}

func intEl(n int) []byte          { return mustMarshal(n) }
func utf8El(s string) []byte      { return raw(asn1.ClassUniversal, asn1.TagUTF8String, s) }
func printableEl(s string) []byte { return raw(asn1.ClassUniversal, asn1.TagPrintableString, s) }

// ctxEl is an implicitly tagged [tag] UTF8String.
func ctxEl(tag int, s string) []byte { return raw(asn1.ClassContextSpecific, tag, s) }

func raw(class, tag int, s string) []byte {
	return mustMarshal(asn1.RawValue{Class: class, Tag: tag, Bytes: []byte(s)})
}

func mustMarshal(v any) []byte {
	b, err := asn1.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
