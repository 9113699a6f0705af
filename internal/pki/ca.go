package pki

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/clover-kv/clover/identity"
)

// Default lifetimes.
const (
	DefaultCALifetime   = 10 * 365 * 24 * time.Hour // 87600h, ten years
	DefaultLeafLifetime = 365 * 24 * time.Hour      // 8760h, one year
)

// backdate is how far before its issue a certificate becomes valid, for
// clocks that run behind.
const backdate = time.Hour

// Issued is a certificate that was written, and its files.
type Issued struct {
	CertFile, KeyFile string
	Certificate       *x509.Certificate
}

// CreateCA makes the CA of cluster trustDomain in dir (created, mode 0700,
// if missing): ca.crt (0644) and ca.key (0600), an ECDSA P-256 key and a
// self-signed certificate with the URI SAN spiffe://<trust-domain>, valid
// for lifetime (0: DefaultCALifetime), that signs leaves only (path length
// zero). It never overwrites: if either file exists it fails with
// ErrExists. Bad input is an *InputError.
func CreateCA(dir, trustDomain string, lifetime time.Duration) (Issued, error) {
	uri, err := identity.CAURI(trustDomain)
	if err != nil {
		return Issued{}, bad(FieldTrustDomain, err)
	}
	if lifetime == 0 {
		lifetime = DefaultCALifetime
	}
	if lifetime < 0 {
		return Issued{}, badf(FieldLifetime, "%v: want a positive duration", lifetime)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Issued{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "Clover CA " + trustDomain, Organization: []string{"Clover"}},
		URIs:                  []*url.URL{uri},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(lifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	key, err := newKey()
	if err != nil {
		return Issued{}, err
	}
	cert, err := sign(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return Issued{}, err
	}
	out := Issued{CertFile: filepath.Join(dir, CACertFile), KeyFile: filepath.Join(dir, CAKeyFile), Certificate: cert}
	if err := writePair(out.CertFile, out.KeyFile, cert.Raw, key, false); err != nil {
		return Issued{}, err
	}
	return out, nil
}

// ca is a directory's CA, loaded to sign.
type ca struct {
	cert        *x509.Certificate
	key         crypto.Signer
	trustDomain string
}

// loadCA reads dir's CA certificate and key. Errors wrap ErrNoCA.
func loadCA(dir string) (ca, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	cert, err := readCert(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		return ca{}, fmt.Errorf("%w: %s has no %s (create one with clover cert create-ca)", ErrNoCA, dir, CACertFile)
	}
	if err != nil {
		return ca{}, fmt.Errorf("%w: %w", ErrNoCA, err)
	}
	td, err := identity.TrustDomainOfCA(cert)
	if err != nil {
		return ca{}, fmt.Errorf("%w: %s: %w", ErrNoCA, certPath, err)
	}
	key, err := readKey(keyPath, cert)
	if err != nil {
		return ca{}, fmt.Errorf("%w: %w", ErrNoCA, err)
	}
	return ca{cert: cert, key: key, trustDomain: td}, nil
}
