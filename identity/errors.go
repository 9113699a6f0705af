package identity

import "errors"

// Sentinel errors. Every error this package returns wraps at least one of
// them, with detail; test with errors.Is. Values taken from a certificate
// are clipped before they are quoted, so that an error string never
// carries a long attacker-chosen string.
var (
	// ErrNoIdentity: the certificate has no URI SAN or no Clover extension
	// (or there is no certificate at all).
	ErrNoIdentity = errors.New("no identity")
	// ErrSeveralIdentities: the certificate has more than one URI SAN, or
	// the Clover extension more than once.
	ErrSeveralIdentities = errors.New("several identities")
	// ErrMalformedURI: the URI SAN is not spiffe://<trust-domain>/node/<id>
	// or spiffe://<trust-domain>/user/<name> (wrong scheme, path, port,
	// query, user info, or a bad trust domain, ID or name).
	ErrMalformedURI = errors.New("malformed identity URI")
	// ErrInvalidName: a trust domain, node ID or user name breaks its
	// syntax (see ValidName and ValidTrustDomain).
	ErrInvalidName = errors.New("invalid name")
	// ErrWrongTrustDomain: the identity belongs to another cluster.
	ErrWrongTrustDomain = errors.New("wrong trust domain")
	// ErrMalformedExtension: the Clover extension is not the DER encoding
	// this package writes: not DER, trailing bytes, not in canonical form
	// (a role list unsorted or with duplicates, an empty field present), an
	// unknown purpose, or marked critical.
	ErrMalformedExtension = errors.New("malformed identity extension")
	// ErrUnsupportedVersion: the extension's version is not 1.
	ErrUnsupportedVersion = errors.New("unsupported identity version")
	// ErrPurposeMismatch: the extension's purpose (node or user) disagrees
	// with the URI SAN's path.
	ErrPurposeMismatch = errors.New("purpose disagrees with the URI")
	// ErrUnknownRole: a role other than reader, writer, admin, auditor.
	ErrUnknownRole = errors.New("unknown role")
	// ErrUnknownCountry: a user's jurisdiction is not an officially
	// assigned ISO 3166-1 alpha-2 code in upper case. A node's locality
	// with an unknown country wraps it too, beside ErrInvalidLocality.
	ErrUnknownCountry = errors.New("unknown country")
	// ErrInvalidLocality: a node's locality does not parse with
	// placement.ParseLocality or is not in its canonical form.
	ErrInvalidLocality = errors.New("invalid locality")
	// ErrMisplacedField: a node identity carries user fields (roles,
	// jurisdiction), or a user identity a node field (locality).
	ErrMisplacedField = errors.New("field of the other purpose")
	// ErrMissingField: a node without a locality, a user without roles or
	// without a jurisdiction.
	ErrMissingField = errors.New("missing field")
	// ErrNotCA: TrustDomainOfCA was given a certificate that is not a CA.
	ErrNotCA = errors.New("not a CA certificate")
	// ErrNotVerified: FromConnectionState found no verified chain: the TLS
	// configuration did not verify the peer's certificate.
	ErrNotVerified = errors.New("peer certificate not verified")
)

// maxQuoted is the longest value quoted in an error message.
const maxQuoted = 64

// clip shortens s for quoting in an error message.
func clip(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	return s[:maxQuoted] + "..."
}
