package placement

import (
	"errors"
	"strings"
)

// Sentinel errors. Every error this package returns wraps one or more of
// them; test with errors.Is. Messages name the bad part and its value.
var (
	// ErrInvalidLocality: a locality string or value is malformed (unknown or
	// duplicate key, empty value, bad region or zone label, missing country).
	ErrInvalidLocality = errors.New("invalid locality")
	// ErrUnknownCountry: a code is not an officially assigned ISO 3166-1
	// alpha-2 code (in upper case where a stored value is checked).
	ErrUnknownCountry = errors.New("unknown country code")
	// ErrUnknownJurisdiction: a name is not in the catalogue.
	ErrUnknownJurisdiction = errors.New("unknown jurisdiction")
	// ErrInvalidJurisdiction: an operator-defined jurisdiction has a bad name
	// or a bad country list.
	ErrInvalidJurisdiction = errors.New("invalid jurisdiction")
	// ErrInvalidPolicy: a policy field is out of range or unknown.
	ErrInvalidPolicy = errors.New("invalid policy")
	// ErrInvalidInput: an argument to a placement function is malformed
	// (replica or shard count out of range, empty or duplicate node IDs).
	ErrInvalidInput = errors.New("invalid placement input")
	// ErrCannotPlace: too few permitted live nodes to meet the policy. The
	// placement fails closed: no node outside the policy is ever used.
	ErrCannotPlace = errors.New("cannot place replicas")
)

// listError is one sentinel plus every problem found, reported together.
type listError struct {
	kind     error
	problems []error
}

func (e *listError) Error() string {
	var b strings.Builder
	b.WriteString(e.kind.Error())
	for i, p := range e.problems {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(p.Error())
	}
	return b.String()
}

func (e *listError) Unwrap() []error {
	return append([]error{e.kind}, e.problems...)
}

// clip shortens operator input quoted in an error message.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
