// Package identity reads and writes the identity a Clover certificate
// carries: who a node or a user is, as the cluster CA attests it. It is
// pure: crypto/x509 and encoding/asn1 over values, no I/O, no clock.
//
// # The format
//
// An identity certificate, signed by the cluster CA, has exactly one URI
// SAN (SPIFFE-style)
//
//	spiffe://<trust-domain>/node/<id>     a node
//	spiffe://<trust-domain>/user/<name>   a user (an application or an operator)
//
// where the trust domain is the cluster's name (1-128 characters of a-z,
// 0-9, '.', '-', in dot-separated labels that begin and end with a letter
// or digit) and IDs and names are 1-64 characters of a-z, 0-9, '.', '_',
// '-' beginning with a letter or digit. It also has exactly one Clover
// extension, non-critical (crypto/x509's Verify refuses certificates with
// critical extensions it does not know), with the OID
//
//	1.2.840.113556.1.8000.2554.59558.24235.63008.18068.35356.9509366.810568.1
//
// (OID): arc 1 of the project's own arc, made from the UUID
// e8a65eab-f620-4694-8a1c-9119f60c5e48 under Microsoft's documented
// GUID-derived arc 1.2.840.113556.1.8000.2554, which needs no registration.
// The UUID arc 2.25.<uuid as an integer> of ITU-T X.667 was not used:
// crypto/x509 parses OIDs with components of at most 31 bits, so a
// certificate carrying a 128-bit component fails to parse altogether
// (TestIdentityUUIDArcUnparsable shows it).
//
// The extension's value is the DER encoding of
//
//	CloverIdentity ::= SEQUENCE {            -- implicit tags
//	  version       INTEGER,                 -- 1
//	  purpose       UTF8String,              -- "node" or "user", as the URI path
//	  locality      [0] UTF8String OPTIONAL, -- node only: "country=IE,region=ie-dublin,zone=a"
//	  roles         [1] UTF8String OPTIONAL, -- user only: "reader,writer"
//	  jurisdiction  [2] UTF8String OPTIONAL  -- user only: "IE"
//	}
//
// A node's extension holds its locality in the canonical form of
// placement.Locality.String (country required, region and zone optional);
// a user's holds one or more roles (admin, auditor, reader, writer),
// sorted, comma-separated, once each, and the ISO 3166-1 alpha-2 code of
// the country the user works from, in upper case. Fields of the other
// purpose are absent. Readers accept exactly what Extension writes: any
// other encoding of the same value, a version other than 1, or a field out
// of place is refused, each with its own error (errors.go).
//
// # Use
//
// Issuing (internal/pki does this for clover cert):
//
//	id := identity.Identity{TrustDomain: "prod", Kind: identity.Node, Name: "ie-1",
//		Locality: placement.Locality{Country: "IE", Region: "ie-dublin", Zone: "a"}}
//	ext, err := identity.Extension(id) // validates id
//	uri, err := identity.URL(id)
//	tmpl := &x509.Certificate{URIs: []*url.URL{uri}, ExtraExtensions: []pkix.Extension{ext}, ...}
//	caURI, err := identity.CAURI("prod") // the CA's own URI SAN, spiffe://prod
//
// Reading, on a connection whose peer certificate crypto/tls has verified
// against the cluster CA (tls.RequireAndVerifyClientCert on a server):
//
//	id, err := identity.FromConnectionState(conn.ConnectionState(), "prod")
//	if errors.Is(err, identity.ErrWrongTrustDomain) { ... another cluster's ... }
//	if err != nil { ... refuse the peer ... }
//	if id.Kind == identity.User && id.HasRole(identity.RoleWriter) { ... }
//
// FromCertificate reads a certificate without verifying its chain, for a
// certificate the caller has verified, or to show one (clover cert show).
// TrustDomainOfCA reads the trust domain from the CA certificate.
//
// testdata/ holds a gallery of certificates, good ones and wrong ones each
// named by its defect; TestGallery checks that each is read as intended or
// refused with its own error. Regenerate it with
//
//	go test ./identity -run TestGallery -update
package identity
