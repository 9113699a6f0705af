package identity

import (
	"fmt"
	"slices"
	"strings"
)

// Role is what a user may do. A user holds one or more roles; what each
// permits is decided at the gateway, not here.
type Role string

// The roles. An auditor reads status, placement proofs and the audit log,
// never data.
const (
	RoleAdmin   Role = "admin"
	RoleAuditor Role = "auditor"
	RoleReader  Role = "reader"
	RoleWriter  Role = "writer"
)

// Roles returns every role, sorted. The caller owns the slice.
func Roles() []Role { return []Role{RoleAdmin, RoleAuditor, RoleReader, RoleWriter} }

// Known reports whether r is one of the roles.
func (r Role) Known() bool { return slices.Contains(Roles(), r) }

// ParseRoles parses a comma-separated list of roles as an operator types
// it: spaces around names are ignored, names are case-insensitive, and a
// role given twice counts once. It returns the roles sorted. Errors wrap
// ErrUnknownRole for a name that is not a role (an empty one included),
// and ErrMissingField for an empty list.
func ParseRoles(s string) ([]Role, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: no roles (want one or more of %s)", ErrMissingField, roleList())
	}
	var out []Role
	for _, part := range strings.Split(s, ",") {
		r := Role(strings.ToLower(strings.TrimSpace(part)))
		if !r.Known() {
			return nil, fmt.Errorf("%w: %q (want %s)", ErrUnknownRole, clip(string(r)), roleList())
		}
		out = append(out, r)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// formatRoles is the canonical form of a role set: sorted, once each,
// comma-separated.
func formatRoles(roles []Role) string {
	s := slices.Clone(roles)
	slices.Sort(s)
	s = slices.Compact(s)
	names := make([]string, len(s))
	for i, r := range s {
		names[i] = string(r)
	}
	return strings.Join(names, ",")
}

// parseCanonicalRoles reads the roles field of the extension, which must
// be in canonical form. Errors wrap ErrUnknownRole or
// ErrMalformedExtension.
func parseCanonicalRoles(s string) ([]Role, error) {
	var out []Role
	for _, part := range strings.Split(s, ",") {
		r := Role(part)
		if !r.Known() {
			return nil, fmt.Errorf("%w: %q (want %s)", ErrUnknownRole, clip(part), roleList())
		}
		out = append(out, r)
	}
	if formatRoles(out) != s {
		return nil, fmt.Errorf("%w: roles %q are not sorted and unique", ErrMalformedExtension, clip(s))
	}
	return out, nil
}

func roleList() string { return formatRoles(Roles()) }
