package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/url"
	"path/filepath"
	"time"

	"github.com/clover-kv/clover/identity"
	"github.com/clover-kv/clover/placement"
)

// Options of a node or user certificate.
type Options struct {
	// Lifetime of the certificate; 0 means DefaultLeafLifetime. It may not
	// outlast the CA.
	Lifetime time.Duration
	// Overwrite replaces the node's or user's existing files; without it
	// they are never overwritten (ErrExists).
	Overwrite bool
}

// CreateNode issues node id's certificate with dir's CA and writes
// node.<id>.crt (0644) and node.<id>.key (0600): the URI SAN
// spiffe://<trust-domain>/node/<id>, the Clover extension with loc (which
// must be canonical: an upper-case country), hosts as IP and DNS SANs (one
// or more; the addresses the node advertises), and extended key usage for
// both server and client authentication. Errors: *InputError for bad input,
// ErrNoCA, ErrExists.
func CreateNode(dir, id string, loc placement.Locality, hosts []string, opts Options) (Issued, error) {
	if err := checkName(id); err != nil {
		return Issued{}, err
	}
	ips, dns, err := ParseHosts(hosts)
	if err != nil {
		return Issued{}, err
	}
	certName, keyName := NodeFiles(id)
	return issue(dir, identity.Identity{Kind: identity.Node, Name: id, Locality: loc}, func(t *x509.Certificate) {
		t.IPAddresses, t.DNSNames = ips, dns
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}, certName, keyName, opts)
}

// CreateUser issues user name's certificate with dir's CA and writes
// user.<name>.crt (0644) and user.<name>.key (0600): the URI SAN
// spiffe://<trust-domain>/user/<name>, the Clover extension with roles
// (one or more) and country (the upper-case ISO 3166-1 alpha-2 code of the
// jurisdiction the user works from), and extended key usage for client
// authentication only. Errors as CreateNode.
func CreateUser(dir, name string, roles []identity.Role, country string, opts Options) (Issued, error) {
	if err := checkName(name); err != nil {
		return Issued{}, err
	}
	certName, keyName := UserFiles(name)
	return issue(dir, identity.Identity{Kind: identity.User, Name: name, Roles: roles, Country: country}, func(t *x509.Certificate) {
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}, certName, keyName, opts)
}

// checkName checks a node ID or user name, which also makes the file
// names, before anything else.
func checkName(name string) error {
	if identity.ValidName(name) {
		return nil
	}
	return badf(FieldName, "%w: %q: want 1-%d characters of a-z, 0-9, '.', '_', '-' starting with a letter or digit",
		identity.ErrInvalidName, clip(name), identity.MaxNameLen)
}

// issue signs a certificate of id (its trust domain: the CA's) shaped by
// set, and writes it and its key.
func issue(dir string, id identity.Identity, set func(*x509.Certificate), certName, keyName string, opts Options) (Issued, error) {
	authority, err := loadCA(dir)
	if err != nil {
		return Issued{}, err
	}
	id.TrustDomain = authority.trustDomain
	ext, err := identity.Extension(id)
	if err != nil {
		return Issued{}, bad(fieldOf(err, id), err)
	}
	uri, err := identity.URL(id)
	if err != nil {
		return Issued{}, bad(fieldOf(err, id), err)
	}
	tmpl, err := leafTemplate(authority.cert, opts.Lifetime)
	if err != nil {
		return Issued{}, err
	}
	tmpl.Subject = pkix.Name{CommonName: id.Name, Organization: []string{"Clover " + id.TrustDomain}}
	tmpl.URIs = []*url.URL{uri}
	tmpl.ExtraExtensions = []pkix.Extension{ext}
	set(tmpl)
	key, err := newKey()
	if err != nil {
		return Issued{}, err
	}
	cert, err := sign(tmpl, authority.cert, key.Public(), authority.key)
	if err != nil {
		return Issued{}, err
	}
	out := Issued{CertFile: filepath.Join(dir, certName), KeyFile: filepath.Join(dir, keyName), Certificate: cert}
	if err := writePair(out.CertFile, out.KeyFile, cert.Raw, key, opts.Overwrite); err != nil {
		return Issued{}, err
	}
	return out, nil
}

// fieldOf is the field of id that its validation error is about.
func fieldOf(err error, id identity.Identity) Field {
	switch {
	case errors.Is(err, identity.ErrInvalidLocality):
		return FieldLocality
	case errors.Is(err, identity.ErrUnknownRole):
		return FieldRoles
	case errors.Is(err, identity.ErrUnknownCountry):
		return FieldCountry
	case errors.Is(err, identity.ErrMissingField) && id.Kind == identity.Node:
		return FieldLocality
	case errors.Is(err, identity.ErrMissingField) && len(id.Roles) == 0:
		return FieldRoles
	case errors.Is(err, identity.ErrMissingField):
		return FieldCountry
	}
	return FieldName
}

// leafTemplate is a leaf valid from now (backdated, never before the CA)
// for lifetime (0: DefaultLeafLifetime), with a key usage for signatures.
// A lifetime that outlasts the CA is an *InputError.
func leafTemplate(caCert *x509.Certificate, lifetime time.Duration) (*x509.Certificate, error) {
	if lifetime == 0 {
		lifetime = DefaultLeafLifetime
	}
	if lifetime < 0 {
		return nil, badf(FieldLifetime, "%v: want a positive duration", lifetime)
	}
	now := time.Now()
	notAfter := now.Add(lifetime)
	if notAfter.After(caCert.NotAfter) {
		return nil, badf(FieldLifetime, "%v would outlast the CA, which expires %s", lifetime, caCert.NotAfter.UTC().Format(time.RFC3339))
	}
	notBefore := now.Add(-backdate)
	if notBefore.Before(caCert.NotBefore) {
		notBefore = caCert.NotBefore
	}
	return &x509.Certificate{NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature}, nil
}
