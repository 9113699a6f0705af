package audit

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"testing"
	"time"

	cloverv1 "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/internal/testcerts"
)

// signer is a certificate and its key, loaded from testcerts' files.
type signer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func load(t testing.TB, f testcerts.Files) signer {
	t.Helper()
	c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	return signer{cert: c.Leaf, key: c.PrivateKey.(crypto.Signer)}
}

func pool(t testing.TB, caFile string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		t.Fatal("no CA certificate")
	}
	return p
}

// signed is cp as node name would send it, signed with s's key and carrying
// s's certificate.
func signed(t testing.TB, cp Checkpoint, name string, s signer) *cloverv1.SignedCheckpoint {
	t.Helper()
	msg, err := SignCheckpoint(cp, name, s.key)
	if err != nil {
		t.Fatal(err)
	}
	sc := &cloverv1.SignedCheckpoint{
		Stream: "shard/3", Keyspace: "people", ShardId: 3, Note: msg, Signer: name,
		Size: cp.Size, Root: cp.Root[:], TimeUnixNano: cp.Time.UnixNano(),
	}
	if s.cert != nil {
		sc.SignerCert = s.cert.Raw
	}
	return sc
}

func TestVerifySigned(t *testing.T) {
	p := testcerts.NewPKI(t, "prod")
	roots := pool(t, p.CAFile)
	node := load(t, p.Node(t, "ie-1", "country=IE,region=ie-dublin,zone=a"))
	node2 := load(t, p.Node(t, "ie-2", "country=IE,region=ie-dublin,zone=b"))
	user := load(t, p.User(t, "ie-1", "reader", "IE"))
	other := testcerts.NewPKI(t, "prod") // another CA of the same name
	foreign := load(t, other.Node(t, "ie-1", "country=IE,region=ie-dublin,zone=a"))
	plain := testcerts.NewCA(t, "plain")
	pc := plain.Pair(t, "ie-1")
	noIdentity := signer{cert: pc.Leaf, key: pc.PrivateKey.(crypto.Signer)}
	cp := testCheckpoint(t)
	cp.Time = time.Now().UTC().Round(0)

	sc := signed(t, cp, "ie-1", node)
	got, attested, err := VerifySigned(sc, roots, "prod")
	if err != nil || !attested || got.Size != cp.Size || got.Root != cp.Root {
		t.Fatalf("node's own checkpoint: %+v attested=%v err=%v", got, attested, err)
	}

	// Insecure mode: a bare key, verified but not attested.
	bk := ed25519Key(t)
	bare := signed(t, cp, "ie-1", signer{key: bk})
	bare.SignerKey = pkix(t, bk.Public())
	if _, attested, err := VerifySigned(bare, nil, "prod"); err != nil || attested {
		t.Fatalf("insecure checkpoint: attested=%v err=%v", attested, err)
	}

	edit := func(f func(*cloverv1.SignedCheckpoint)) *cloverv1.SignedCheckpoint {
		c := signed(t, cp, "ie-1", node)
		f(c)
		return c
	}
	tests := []struct {
		name    string
		sc      *cloverv1.SignedCheckpoint
		roots   *x509.CertPool
		cluster string
		want    error
	}{
		{"user-certificate", signed(t, cp, "ie-1", user), roots, "prod", ErrBadCertificate},
		{"other-ca", signed(t, cp, "ie-1", foreign), roots, "prod", ErrBadCertificate},
		{"certificate-without-identity", signed(t, cp, "ie-1", noIdentity), pool(t, plain.CAFile), "prod", ErrBadCertificate},
		{"name-mismatch", signed(t, cp, "ie-1", node2), roots, "prod", ErrBadCertificate},
		{"signer-claims-another-node", edit(func(c *cloverv1.SignedCheckpoint) { c.Signer = "ie-2" }), roots, "prod", ErrBadCertificate},
		{"another-cluster", sc, roots, "test", ErrBadCertificate},
		{"no-roots", sc, nil, "prod", ErrBadCertificate},
		{"certificate-garbage", edit(func(c *cloverv1.SignedCheckpoint) { c.SignerCert = []byte("junk") }), roots, "prod", ErrBadCertificate},
		{"signer-key-not-the-certificate's", edit(func(c *cloverv1.SignedCheckpoint) { c.SignerKey = pkix(t, node2.key.Public()) }), roots, "prod", ErrBadCertificate},
		{"signed-by-another-key", edit(func(c *cloverv1.SignedCheckpoint) { c.Note = signed(t, cp, "ie-1", signer{key: node2.key}).Note }), roots, "prod", ErrBadSignature},
		{"certificate-not-valid-at-the-time", signed(t, func() Checkpoint { c := cp; c.Time = c.Time.AddDate(5, 0, 0); return c }(), "ie-1", node), roots, "prod", ErrBadCertificate},
		{"origin-of-another-stream", edit(func(c *cloverv1.SignedCheckpoint) { c.Stream, c.ShardId = "shard/4", 4 }), roots, "prod", ErrBadCheckpoint},
		{"stream-and-shard-disagree", edit(func(c *cloverv1.SignedCheckpoint) { c.ShardId = 4 }), roots, "prod", ErrBadCheckpoint},
		{"admin-stream-with-a-shard", edit(func(c *cloverv1.SignedCheckpoint) { c.Stream = "admin" }), roots, "prod", ErrBadCheckpoint},
		{"display-size", edit(func(c *cloverv1.SignedCheckpoint) { c.Size++ }), roots, "prod", ErrBadCheckpoint},
		{"display-root", edit(func(c *cloverv1.SignedCheckpoint) { c.Root = make([]byte, 32) }), roots, "prod", ErrBadCheckpoint},
		{"display-time", edit(func(c *cloverv1.SignedCheckpoint) { c.TimeUnixNano++ }), roots, "prod", ErrBadCheckpoint},
		{"no-certificate-no-key", edit(func(c *cloverv1.SignedCheckpoint) { c.SignerCert = nil }), roots, "prod", ErrBadSignature},
		{"bare-key-garbage", edit(func(c *cloverv1.SignedCheckpoint) { c.SignerCert, c.SignerKey = nil, []byte("junk") }), roots, "prod", ErrBadSignature},
		{"bare-key-of-another", func() *cloverv1.SignedCheckpoint {
			c := signed(t, cp, "ie-1", signer{key: ed25519Key(t)})
			c.SignerKey = pkix(t, ed25519Key(t).Public())
			return c
		}(), nil, "prod", ErrBadSignature},
		{"insecure-another-cluster", bare, nil, "test", ErrBadCheckpoint},
		{"nil", nil, roots, "prod", ErrBadCheckpoint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, attested, err := VerifySigned(tt.sc, tt.roots, tt.cluster)
			t.Log(err)
			if !errors.Is(err, tt.want) || attested {
				t.Fatalf("VerifySigned = attested %v, %v; want %v", attested, err, tt.want)
			}
		})
	}
}

func pkix(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
