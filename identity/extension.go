package identity

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"slices"

	"github.com/clover-kv/clover/placement"
)

// OID identifies the Clover identity extension:
// 1.2.840.113556.1.8000.2554.59558.24235.63008.18068.35356.9509366.810568.1,
// arc 1 under the project's own arc, which is derived from the UUID
// e8a65eab-f620-4694-8a1c-9119f60c5e48 under Microsoft's GUID-derived arc
// 1.2.840.113556.1.8000.2554 (no registration needed). Do not modify it.
var OID = asn1.ObjectIdentifier{1, 2, 840, 113556, 1, 8000, 2554, 59558, 24235, 63008, 18068, 35356, 9509366, 810568, 1}

// Version is the extension version this package writes and reads.
const Version = 1

// extValue is the extension's value, CloverIdentity in doc.go; the
// context tags are implicit.
type extValue struct {
	Version      int
	Purpose      string `asn1:"utf8"`
	Locality     string `asn1:"optional,tag:0,utf8"`
	Roles        string `asn1:"optional,tag:1,utf8"`
	Jurisdiction string `asn1:"optional,tag:2,utf8"`
}

// claims is what a valid extension says.
type claims struct {
	kind     Kind
	locality placement.Locality
	roles    []Role
	country  string
}

// Extension returns the non-critical Clover extension of id, for a
// certificate template's ExtraExtensions; the certificate's URI SAN must be
// id.URI(). Roles are written sorted and once each. It fails with the
// errors of Validate when id is not valid.
func Extension(id Identity) (pkix.Extension, error) {
	if err := id.Validate(); err != nil {
		return pkix.Extension{}, err
	}
	v := extValue{Version: Version, Purpose: id.Kind.String()}
	if id.Kind == Node {
		v.Locality = id.Locality.String()
	} else {
		v.Roles, v.Jurisdiction = formatRoles(id.Roles), id.Country
	}
	der, err := asn1.Marshal(v)
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("%w: encode: %w", ErrMalformedExtension, err)
	}
	return pkix.Extension{Id: slices.Clone(OID), Value: der}, nil
}

// parseExtension decodes and checks an extension value: DER exactly as
// Extension writes it, version 1, a known purpose, and the fields of that
// purpose only, each valid and canonical.
func parseExtension(der []byte) (claims, error) {
	var seq asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &seq); err != nil {
		return claims{}, fmt.Errorf("%w: not DER: %w", ErrMalformedExtension, err)
	} else if len(rest) > 0 {
		return claims{}, fmt.Errorf("%w: %d bytes after the value", ErrMalformedExtension, len(rest))
	}
	if seq.Class != asn1.ClassUniversal || seq.Tag != asn1.TagSequence || !seq.IsCompound {
		return claims{}, fmt.Errorf("%w: not a SEQUENCE", ErrMalformedExtension)
	}
	// The version first, so that a later version is named as such even if
	// its fields differ.
	var version int
	if _, err := asn1.Unmarshal(seq.Bytes, &version); err != nil {
		return claims{}, fmt.Errorf("%w: version: %w", ErrMalformedExtension, err)
	}
	if version != Version {
		return claims{}, fmt.Errorf("%w: version %d (want %d)", ErrUnsupportedVersion, version, Version)
	}
	var v extValue
	if _, err := asn1.Unmarshal(der, &v); err != nil {
		return claims{}, fmt.Errorf("%w: %w", ErrMalformedExtension, err)
	}
	if again, err := asn1.Marshal(v); err != nil || !bytes.Equal(again, der) {
		return claims{}, fmt.Errorf("%w: not in canonical form (UTF8String fields, no empty field, nothing extra)", ErrMalformedExtension)
	}
	kind, ok := kindOf(v.Purpose)
	if !ok {
		return claims{}, fmt.Errorf("%w: purpose %q (want node or user)", ErrMalformedExtension, clip(v.Purpose))
	}
	if kind == Node {
		return nodeClaims(v)
	}
	return userClaims(v)
}

func nodeClaims(v extValue) (claims, error) {
	if v.Roles != "" || v.Jurisdiction != "" {
		return claims{}, fmt.Errorf("%w: a node's extension has roles or a jurisdiction", ErrMisplacedField)
	}
	if v.Locality == "" {
		return claims{}, fmt.Errorf("%w: a node's extension has no locality", ErrMissingField)
	}
	loc, err := placement.ParseLocality(v.Locality)
	if err != nil {
		return claims{}, localityError(err)
	}
	if loc.String() != v.Locality {
		return claims{}, fmt.Errorf("%w: %q is not in canonical form (want %q)", ErrInvalidLocality, clip(v.Locality), clip(loc.String()))
	}
	return claims{kind: Node, locality: loc}, nil
}

func userClaims(v extValue) (claims, error) {
	if v.Locality != "" {
		return claims{}, fmt.Errorf("%w: a user's extension has a locality", ErrMisplacedField)
	}
	if v.Roles == "" {
		return claims{}, fmt.Errorf("%w: a user's extension has no roles", ErrMissingField)
	}
	roles, err := parseCanonicalRoles(v.Roles)
	if err != nil {
		return claims{}, err
	}
	if err := checkCountry(v.Jurisdiction); err != nil {
		return claims{}, err
	}
	return claims{kind: User, roles: roles, country: v.Jurisdiction}, nil
}
