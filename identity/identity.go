package identity

import (
	"errors"
	"fmt"
	"slices"

	"github.com/clover-kv/clover/placement"
)

// Kind says whether an identity is a node's or a user's.
type Kind int

// The kinds of identity. The zero Kind is none of them.
const (
	Node Kind = iota + 1
	User
)

// String returns "node", "user", or "kind(N)" for anything else. The first
// two are also the URI path segment and the extension's purpose.
func (k Kind) String() string {
	switch k {
	case Node:
		return "node"
	case User:
		return "user"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// kindOf is the Kind named by a URI path segment or a purpose.
func kindOf(s string) (Kind, bool) {
	switch s {
	case "node":
		return Node, true
	case "user":
		return User, true
	}
	return 0, false
}

// Identity is who a certificate names, as the cluster CA attested it.
//
// A valid node identity has a Locality and no Roles or Country; a valid
// user identity has one or more Roles and a Country and a zero Locality.
// Both have a valid TrustDomain (ValidTrustDomain) and Name (ValidName).
type Identity struct {
	TrustDomain string             // the cluster's name, e.g. "prod"
	Kind        Kind               // Node or User
	Name        string             // the node ID or the user name
	Locality    placement.Locality // node only: where the node runs
	Roles       []Role             // user only: sorted, once each
	Country     string             // user only: ISO 3166-1 alpha-2 code of the jurisdiction the user works from
}

// URI returns the identity's URI SAN, spiffe://<trust-domain>/<kind>/<name>.
// It is only meaningful for a valid identity.
func (id Identity) URI() string {
	return "spiffe://" + id.TrustDomain + "/" + id.Kind.String() + "/" + id.Name
}

// String returns the URI followed by the kind's fields, e.g.
// "spiffe://prod/node/ie-1 [country=IE,region=ie-dublin,zone=a]" or
// "spiffe://prod/user/alice [roles=reader,writer jurisdiction=IE]".
func (id Identity) String() string {
	if id.Kind == Node {
		return id.URI() + " [" + id.Locality.String() + "]"
	}
	return fmt.Sprintf("%s [roles=%s jurisdiction=%s]", id.URI(), formatRoles(id.Roles), id.Country)
}

// HasRole reports whether a user identity holds r.
func (id Identity) HasRole(r Role) bool { return slices.Contains(id.Roles, r) }

// Validate checks id against the rules of its kind (see Identity); it never
// changes id. Roles need not be sorted: Extension encodes them sorted and
// once each. Errors wrap ErrInvalidName, ErrInvalidLocality (and
// ErrUnknownCountry for its country), ErrUnknownRole, ErrUnknownCountry,
// ErrMisplacedField or ErrMissingField.
func (id Identity) Validate() error {
	if err := checkTrustDomain(id.TrustDomain); err != nil {
		return err
	}
	switch id.Kind {
	case Node:
		if err := checkName("node ID", id.Name); err != nil {
			return err
		}
		if len(id.Roles) > 0 || id.Country != "" {
			return fmt.Errorf("%w: node %s has roles or a jurisdiction", ErrMisplacedField, id.Name)
		}
		return checkLocality(id.Locality)
	case User:
		if err := checkName("user name", id.Name); err != nil {
			return err
		}
		if id.Locality != (placement.Locality{}) {
			return fmt.Errorf("%w: user %s has a locality", ErrMisplacedField, id.Name)
		}
		return checkUserFields(id.Roles, id.Country)
	}
	return fmt.Errorf("%w: kind %v: want node or user", ErrMalformedURI, id.Kind)
}

// checkLocality checks that l is a complete, canonical locality.
func checkLocality(l placement.Locality) error {
	if l == (placement.Locality{}) {
		return fmt.Errorf("%w: a node needs a locality", ErrMissingField)
	}
	return localityError(l.Validate())
}

// localityError makes an error of placement's locality checks, which
// begins "invalid locality", wrap ErrInvalidLocality, and ErrUnknownCountry
// when the country is the problem, keeping its message; nil stays nil.
func localityError(err error) error {
	if err == nil {
		return nil
	}
	e := &multiError{msg: err.Error(), errs: []error{ErrInvalidLocality, err}}
	if errors.Is(err, placement.ErrUnknownCountry) {
		e.errs = append(e.errs, ErrUnknownCountry)
	}
	return e
}

// multiError is an error with its own message that wraps several.
type multiError struct {
	msg  string
	errs []error
}

func (e *multiError) Error() string   { return e.msg }
func (e *multiError) Unwrap() []error { return e.errs }

// checkUserFields checks a user's roles (one or more, each known) and
// country (an assigned upper-case ISO code).
func checkUserFields(roles []Role, country string) error {
	if len(roles) == 0 {
		return fmt.Errorf("%w: a user needs one or more roles (%s)", ErrMissingField, roleList())
	}
	for _, r := range roles {
		if !r.Known() {
			return fmt.Errorf("%w: %q (want %s)", ErrUnknownRole, clip(string(r)), roleList())
		}
	}
	return checkCountry(country)
}

// checkCountry checks a user's jurisdiction.
func checkCountry(country string) error {
	switch {
	case country == "":
		return fmt.Errorf("%w: a user needs a jurisdiction (an ISO 3166-1 alpha-2 country code)", ErrMissingField)
	case !placement.IsCountry(country):
		return fmt.Errorf("%w: jurisdiction %q: want an upper-case ISO 3166-1 alpha-2 code such as IE", ErrUnknownCountry, clip(country))
	}
	return nil
}
