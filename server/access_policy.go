package server

import (
	"fmt"
	"slices"
	"strings"

	"github.com/clover-kv/clover/access"
	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/placement"
)

// accessPolicy is a keyspace's access policy as its record stores it: what
// the admin asked, and the caller countries the meta leader resolved from
// it with its catalogue when the policy was set, so that every gateway
// decides alike whatever its own configuration. The zero accessPolicy is
// the default: reader reads, writer writes, callers come from the
// residency (class personal) or anywhere (class public).
type accessPolicy struct {
	ReadRoles  []access.Role `json:"read_roles,omitempty"`
	WriteRoles []access.Role `json:"write_roles,omitempty"`
	// CallerJurisdictions are the jurisdictions and countries callers may
	// work from, as the admin gave them ("ANY": anywhere); empty: the
	// default.
	CallerJurisdictions []string `json:"caller_jurisdictions,omitempty"`
	// CallerCountries are CallerJurisdictions resolved, sorted; with
	// CallerAnywhere, every country.
	CallerCountries []string `json:"caller_countries,omitempty"`
	CallerAnywhere  bool     `json:"caller_anywhere,omitempty"`
}

// dataRoles are the roles a keyspace may name to read or write its keys.
// An auditor never touches data, so it is refused rather than ignored.
var dataRoles = []access.Role{access.RoleReader, access.RoleWriter, access.RoleAdmin}

// resolveAccess checks the access policy of p against catalogue cat and
// resolves its caller jurisdictions. Roles are the lower-case names of
// dataRoles; caller jurisdictions are catalogue names, upper-case ISO
// 3166-1 alpha-2 country codes, or ANY alone. Errors wrap ErrInvalid and
// name the field and element (read_roles[1] ...).
func resolveAccess(cat *placement.Catalogue, p *pb.Policy) (accessPolicy, error) {
	var out accessPolicy
	var err error
	if out.ReadRoles, err = parseRoles("read_roles", p.GetReadRoles()); err != nil {
		return accessPolicy{}, err
	}
	if out.WriteRoles, err = parseRoles("write_roles", p.GetWriteRoles()); err != nil {
		return accessPolicy{}, err
	}
	if out.CallerCountries, out.CallerAnywhere, err = resolveCallers(cat, p.GetCallerJurisdictions()); err != nil {
		return accessPolicy{}, err
	}
	out.CallerJurisdictions = slices.Clone(p.GetCallerJurisdictions())
	return out, nil
}

func parseRoles(field string, names []string) ([]access.Role, error) {
	var out []access.Role
	for i, name := range names {
		r := access.Role(name)
		switch {
		case r == access.RoleAuditor:
			return nil, invalidf("%s[%d] %q: an auditor never reads or writes a key or value; want %s", field, i, name, roleNames())
		case !slices.Contains(dataRoles, r):
			return nil, invalidf("%s[%d] %q: unknown role (want %s)", field, i, clipName(name), roleNames())
		case slices.Contains(out, r):
			return nil, invalidf("%s[%d] %q: listed twice", field, i, name)
		}
		out = append(out, r)
	}
	return out, nil
}

func roleNames() string {
	s := make([]string, len(dataRoles))
	for i, r := range dataRoles {
		s[i] = string(r)
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// resolveCallers resolves caller jurisdictions to sorted countries, or
// anywhere for ANY; no names resolve to nothing (the default).
func resolveCallers(cat *placement.Catalogue, names []string) (countries []string, anywhere bool, err error) {
	const field = "caller_jurisdictions"
	var js, cs []string
	for i, name := range names {
		switch _, isSet := cat.Countries(name); {
		case slices.Contains(names[:i], name):
			return nil, false, invalidf("%s[%d] %q: listed twice", field, i, name)
		case name == "ANY":
			if len(names) > 1 {
				return nil, false, invalidf("%s[%d] %q: ANY cannot be combined with other names", field, i, name)
			}
			return nil, true, nil
		case isSet:
			js = append(js, name)
		case placement.IsCountry(name):
			cs = append(cs, name)
		default:
			return nil, false, invalidf("%s[%d] %q: %v (known jurisdictions: %s; or an upper-case ISO 3166-1 alpha-2 country code such as CH; or ANY)",
				field, i, clipName(name), placement.ErrUnknownJurisdiction, strings.Join(cat.Names(), ", "))
		}
	}
	if len(js)+len(cs) == 0 {
		return nil, false, nil
	}
	countries, _ = cat.PermittedCountries(placement.Policy{AllowJurisdictions: js, AllowCountries: cs})
	return countries, false, nil
}

// clipName shortens a name for an error message.
func clipName(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// accessKeyspace is what the gateway needs of k to decide a data operation
// (access.Decide) and what the guardrail checks (access.Guardrail.Check):
// its class (anything but public counts as personal, failing closed), its
// resolved residency and its resolved access policy.
func (k *keyspaceRecord) accessKeyspace() access.Keyspace {
	return access.Keyspace{
		Name:               k.Name,
		Personal:           k.Policy.Class != placement.ClassPublic,
		ResidencyCountries: k.Countries,
		// Countries lists every permitted country even for an anywhere
		// policy; with denied countries it is not every country.
		ResidencyAnywhere: k.Anywhere && len(k.Policy.DenyCountries) == 0,
		Access: access.Policy{
			ReadRoles:       k.Access.ReadRoles,
			WriteRoles:      k.Access.WriteRoles,
			CallerCountries: k.Access.CallerCountries,
			CallerAnywhere:  k.Access.CallerAnywhere,
		},
	}
}

// effectiveCallers returns the countries callers of k may work from and
// whether that is anywhere, the default resolved: what Decide applies.
func (k *keyspaceRecord) effectiveCallers() ([]string, bool) {
	a := k.Access
	switch {
	case a.CallerAnywhere:
		return nil, true
	case len(a.CallerCountries) > 0:
		return a.CallerCountries, false
	case k.Policy.Class != placement.ClassPublic:
		return k.Countries, false
	}
	return nil, true
}

// policyPB is k's whole policy on the wire: residency, replicas, class, and
// the access policy with its effective callers.
func (k *keyspaceRecord) policyPB() *pb.Policy {
	out := policyToPB(k.Policy)
	for _, r := range k.Access.ReadRoles {
		out.ReadRoles = append(out.ReadRoles, string(r))
	}
	for _, r := range k.Access.WriteRoles {
		out.WriteRoles = append(out.WriteRoles, string(r))
	}
	out.CallerJurisdictions = k.Access.CallerJurisdictions
	out.CallerCountries, out.CallerAnywhere = k.effectiveCallers()
	out.Audit = k.auditMode()
	return out
}

// String is the access policy in one line, for history and logs:
// "read=reader write=writer callers=default".
func (a accessPolicy) String() string {
	roles := func(rs []access.Role, def access.Role) string {
		if len(rs) == 0 {
			return string(def)
		}
		s := make([]string, len(rs))
		for i, r := range rs {
			s[i] = string(r)
		}
		return strings.Join(s, ",")
	}
	callers := "default"
	if len(a.CallerJurisdictions) > 0 {
		callers = strings.Join(a.CallerJurisdictions, ",")
	}
	return fmt.Sprintf("read=%s write=%s callers=%s", roles(a.ReadRoles, access.RoleReader), roles(a.WriteRoles, access.RoleWriter), callers)
}
