package pki

import (
	"errors"
	"fmt"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrInvalidInput: a value given to a Create function is refused. The
	// error is an *InputError naming the field; it also wraps the identity
	// package's sentinel where there is one (identity.ErrUnknownRole, ...).
	ErrInvalidInput = errors.New("invalid input")
	// ErrExists: a file that would be written exists. A CA is never
	// overwritten; a node's or user's files only with Options.Overwrite.
	ErrExists = errors.New("file exists")
	// ErrNoCA: the directory holds no usable CA (ca.crt and ca.key).
	ErrNoCA = errors.New("no CA")
	// ErrBadFile: a file is not a PEM certificate or key as this package
	// writes them, or a key does not match its certificate.
	ErrBadFile = errors.New("bad file")
)

// Field names what an InputError is about.
type Field string

// The fields of the Create functions.
const (
	FieldTrustDomain Field = "trust domain"
	FieldName        Field = "name" // node ID or user name
	FieldLocality    Field = "locality"
	FieldRoles       Field = "roles"
	FieldCountry     Field = "country" // a user's jurisdiction
	FieldHosts       Field = "hosts"
	FieldLifetime    Field = "lifetime"
)

// InputError is a refused value: which field, and why.
type InputError struct {
	Field Field
	Err   error
}

func (e *InputError) Error() string {
	return fmt.Sprintf("%s: %s: %v", ErrInvalidInput, e.Field, e.Err)
}

// Unwrap returns ErrInvalidInput and the cause.
func (e *InputError) Unwrap() []error { return []error{ErrInvalidInput, e.Err} }

// bad is an *InputError of field.
func bad(field Field, err error) error { return &InputError{Field: field, Err: err} }

// badf is an *InputError of field with a message.
func badf(field Field, format string, args ...any) error {
	return &InputError{Field: field, Err: fmt.Errorf(format, args...)}
}
