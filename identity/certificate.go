package identity

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/url"
	"strings"
)

// FromCertificate returns the identity cert names: its one URI SAN and its
// one Clover extension, each checked as doc.go describes and against each
// other.
//
// It does NOT verify the certificate's chain, validity period or key
// usage: call it only on a certificate that has been verified against the
// cluster CA, such as the leaf of a verified chain (crypto/tls verifies
// chains with ClientAuth tls.RequireAndVerifyClientCert on a server, and
// by default on a client). FromConnectionState does that. Nor does it check
// the trust domain; the caller compares it with its own.
func FromCertificate(cert *x509.Certificate) (Identity, error) {
	if cert == nil {
		return Identity{}, fmt.Errorf("%w: no certificate", ErrNoIdentity)
	}
	switch n := len(cert.URIs); {
	case n == 0:
		return Identity{}, fmt.Errorf("%w: the certificate has no URI SAN", ErrNoIdentity)
	case n > 1:
		return Identity{}, fmt.Errorf("%w: the certificate has %d URI SANs (want one)", ErrSeveralIdentities, n)
	}
	td, kind, name, err := parseURI(cert.URIs[0])
	if err != nil {
		return Identity{}, err
	}
	ext, err := cloverExtension(cert.Extensions)
	if err != nil {
		return Identity{}, err
	}
	c, err := parseExtension(ext.Value)
	if err != nil {
		return Identity{}, err
	}
	if c.kind != kind {
		return Identity{}, fmt.Errorf("%w: the extension's purpose is %s, the URI names a %s", ErrPurposeMismatch, c.kind, kind)
	}
	return Identity{TrustDomain: td, Kind: kind, Name: name, Locality: c.locality, Roles: c.roles, Country: c.country}, nil
}

// FromConnectionState returns the identity of a TLS peer: that of the leaf
// of the first verified chain, which must belong to trustDomain. It fails
// with ErrNotVerified when the connection verified no chain (no peer
// certificate, or a configuration that skips verification), with
// ErrWrongTrustDomain for another trust domain, and otherwise with the
// errors of FromCertificate.
func FromConnectionState(cs tls.ConnectionState, trustDomain string) (Identity, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return Identity{}, fmt.Errorf("%w: the connection verified no certificate chain", ErrNotVerified)
	}
	id, err := FromCertificate(cs.VerifiedChains[0][0])
	if err != nil {
		return Identity{}, err
	}
	if id.TrustDomain != trustDomain {
		return Identity{}, fmt.Errorf("%w: %s %s is in trust domain %q, want %q", ErrWrongTrustDomain, id.Kind, id.Name, id.TrustDomain, clip(trustDomain))
	}
	return id, nil
}

// TrustDomainOfCA returns the trust domain a cluster CA names with its one
// URI SAN, spiffe://<trust-domain>. It checks only the CA's own fields, not
// its signature or validity period. Errors wrap ErrNotCA, ErrNoIdentity,
// ErrSeveralIdentities or ErrMalformedURI.
func TrustDomainOfCA(ca *x509.Certificate) (string, error) {
	switch {
	case ca == nil:
		return "", fmt.Errorf("%w: no CA certificate", ErrNoIdentity)
	case !ca.BasicConstraintsValid || !ca.IsCA:
		return "", fmt.Errorf("%w: basic constraints do not mark it a CA", ErrNotCA)
	case len(ca.URIs) == 0:
		return "", fmt.Errorf("%w: the CA has no URI SAN spiffe://<trust-domain>", ErrNoIdentity)
	case len(ca.URIs) > 1:
		return "", fmt.Errorf("%w: the CA has %d URI SANs (want one)", ErrSeveralIdentities, len(ca.URIs))
	}
	u := ca.URIs[0]
	if err := checkURIParts(u); err != nil {
		return "", err
	}
	if u.Path != "" || u.RawPath != "" {
		return "", fmt.Errorf("%w: CA URI %q has a path (want spiffe://<trust-domain>)", ErrMalformedURI, clip(u.String()))
	}
	if err := checkTrustDomain(u.Host); err != nil {
		return "", fmt.Errorf("%w: %w", ErrMalformedURI, err)
	}
	return u.Host, nil
}

// CAURI returns the URI SAN of a cluster CA, spiffe://<trust-domain>.
// Errors wrap ErrInvalidName.
func CAURI(trustDomain string) (*url.URL, error) {
	if err := checkTrustDomain(trustDomain); err != nil {
		return nil, err
	}
	return &url.URL{Scheme: "spiffe", Host: trustDomain}, nil
}

// URL returns id's URI SAN for a certificate template, after Validate.
func URL(id Identity) (*url.URL, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	return &url.URL{Scheme: "spiffe", Host: id.TrustDomain, Path: "/" + id.Kind.String() + "/" + id.Name}, nil
}

// parseURI splits spiffe://<trust-domain>/<node|user>/<name>, checking
// every part. Errors wrap ErrMalformedURI, and ErrInvalidName for a bad
// trust domain or name.
func parseURI(u *url.URL) (td string, kind Kind, name string, err error) {
	if err := checkURIParts(u); err != nil {
		return "", 0, "", err
	}
	if err := checkTrustDomain(u.Host); err != nil {
		return "", 0, "", fmt.Errorf("%w: %w", ErrMalformedURI, err)
	}
	seg := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if !strings.HasPrefix(u.Path, "/") || len(seg) != 2 || u.RawPath != "" {
		return "", 0, "", fmt.Errorf("%w: %q: want the path /node/<id> or /user/<name>", ErrMalformedURI, clip(u.String()))
	}
	kind, ok := kindOf(seg[0])
	if !ok {
		return "", 0, "", fmt.Errorf("%w: %q: path begins %q, want /node/ or /user/", ErrMalformedURI, clip(u.String()), clip(seg[0]))
	}
	what := "node ID"
	if kind == User {
		what = "user name"
	}
	if err := checkName(what, seg[1]); err != nil {
		return "", 0, "", fmt.Errorf("%w: %w", ErrMalformedURI, err)
	}
	return u.Host, kind, seg[1], nil
}

// checkURIParts checks that u is a spiffe URI with a host and nothing but
// a path besides.
func checkURIParts(u *url.URL) error {
	switch {
	case u.Scheme != "spiffe":
		return fmt.Errorf("%w: %q: scheme %q, want spiffe", ErrMalformedURI, clip(u.String()), clip(u.Scheme))
	case u.Opaque != "" || u.Host == "":
		return fmt.Errorf("%w: %q: want spiffe://<trust-domain>/...", ErrMalformedURI, clip(u.String()))
	case u.User != nil || u.Port() != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.RawFragment != "":
		return fmt.Errorf("%w: %q: user info, port, query or fragment", ErrMalformedURI, clip(u.String()))
	}
	return nil
}

// cloverExtension returns the one Clover extension among exts. Errors wrap
// ErrNoIdentity, ErrSeveralIdentities, or ErrMalformedExtension when it is
// marked critical.
func cloverExtension(exts []pkix.Extension) (pkix.Extension, error) {
	var found []pkix.Extension
	for _, e := range exts {
		if e.Id.Equal(OID) {
			found = append(found, e)
		}
	}
	switch {
	case len(found) == 0:
		return pkix.Extension{}, fmt.Errorf("%w: the certificate has no Clover extension %s", ErrNoIdentity, OID)
	case len(found) > 1:
		return pkix.Extension{}, fmt.Errorf("%w: the Clover extension appears %d times", ErrSeveralIdentities, len(found))
	case found[0].Critical:
		return pkix.Extension{}, fmt.Errorf("%w: marked critical (it must not be, or chain verification fails)", ErrMalformedExtension)
	}
	return found[0], nil
}
