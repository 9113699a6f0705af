package placement

import (
	"fmt"
	"sort"
	"strings"
)

// DataClass says what kind of data a keyspace holds.
type DataClass string

// Data classes.
const (
	// ClassPersonal is data about people (name, email, phone, IP address).
	ClassPersonal DataClass = "personal"
	// ClassPublic is data that may be held anywhere its policy allows.
	ClassPublic DataClass = "public"
)

// ParseDataClass parses "personal" or "public", in any case. Errors wrap
// ErrInvalidPolicy.
func ParseDataClass(s string) (DataClass, error) {
	switch c := DataClass(strings.ToLower(strings.TrimSpace(s))); c {
	case ClassPersonal, ClassPublic:
		return c, nil
	}
	return "", fmt.Errorf("%w: data class %q (want personal or public)", ErrInvalidPolicy, clip(s))
}

// Replica count limits of a policy.
const (
	MinReplicas = 1
	MaxReplicas = 7
)

// Policy says where a keyspace's replicas may live and how many there are.
//
// The permitted countries are the members of AllowJurisdictions plus
// AllowCountries, minus DenyCountries (deny wins over allow). When both allow
// lists are empty the policy permits every country except DenyCountries
// ("anywhere"). Jurisdiction names are exact catalogue names (upper case);
// country codes are upper-case ISO 3166-1 alpha-2 codes. Check a policy with
// Catalogue.ValidatePolicy before use.
type Policy struct {
	AllowJurisdictions []string  // e.g. ["EEA"]
	AllowCountries     []string  // e.g. ["CH"]
	DenyCountries      []string  // e.g. ["NO"]; wins over both allow lists
	Replicas           int       // MinReplicas..MaxReplicas; odd counts tolerate failures best
	LeaderPreference   []string  // regions ranked best first, e.g. ["ie-dublin"]; may be empty
	Class              DataClass // ClassPersonal or ClassPublic
}

// IsRestricted reports whether the policy names allowed jurisdictions or
// countries. An unrestricted policy permits every country but DenyCountries;
// callers may warn when such a policy has class personal.
func (p Policy) IsRestricted() bool {
	return len(p.AllowJurisdictions) > 0 || len(p.AllowCountries) > 0
}

// String returns a readable one-line form, e.g.
// "residency=EEA,CH deny=NO replicas=3 leaders=ie-dublin class=personal".
// An unrestricted policy shows residency=ANY.
func (p Policy) String() string {
	var b strings.Builder
	b.WriteString("residency=")
	b.WriteString(p.residency())
	if len(p.DenyCountries) > 0 {
		b.WriteString(" deny=")
		b.WriteString(strings.Join(p.DenyCountries, ","))
	}
	fmt.Fprintf(&b, " replicas=%d", p.Replicas)
	if len(p.LeaderPreference) > 0 {
		b.WriteString(" leaders=")
		b.WriteString(strings.Join(p.LeaderPreference, ","))
	}
	b.WriteString(" class=")
	b.WriteString(string(p.Class))
	return b.String()
}

// residency is the allow lists as ParseResidency reads them.
func (p Policy) residency() string {
	if !p.IsRestricted() {
		return "ANY"
	}
	all := make([]string, 0, len(p.AllowJurisdictions)+len(p.AllowCountries))
	all = append(all, p.AllowJurisdictions...)
	all = append(all, p.AllowCountries...)
	return strings.Join(all, ",")
}

// ParseResidency parses a comma-separated residency such as "EEA" or
// "EEA,CH" against the built-in catalogue; see Catalogue.ParseResidency.
func ParseResidency(s string) (allowJurisdictions, allowCountries []string, err error) {
	return DefaultCatalogue().ParseResidency(s)
}

// ParseResidency parses a comma-separated residency such as "EEA", "EEA,CH"
// or "ANY" into a policy's allow lists. Names are case-insensitive and are
// returned upper case in input order: catalogue names go to
// allowJurisdictions, country codes to allowCountries. "ANY" or "anywhere",
// alone, returns two empty lists (every country). Errors wrap
// ErrUnknownJurisdiction for an unknown name and list the known names;
// an empty or duplicate element wraps ErrInvalidPolicy.
func (c *Catalogue) ParseResidency(s string) (allowJurisdictions, allowCountries []string, err error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil, fmt.Errorf("%w: empty residency (want e.g. EEA, EEA,CH or ANY)", ErrInvalidPolicy)
	}
	parts := strings.Split(s, ",")
	seen := make(map[string]bool, len(parts))
	for i, part := range parts {
		name := strings.ToUpper(strings.TrimSpace(part))
		switch {
		case name == "":
			return nil, nil, fmt.Errorf("%w: residency element %d is empty", ErrInvalidPolicy, i+1)
		case name == "ANY" || name == "ANYWHERE":
			if len(parts) > 1 {
				return nil, nil, fmt.Errorf("%w: residency %q: %s cannot be combined with other names", ErrInvalidPolicy, clip(s), name)
			}
			return nil, nil, nil
		case seen[name]:
			return nil, nil, fmt.Errorf("%w: residency %q lists %s twice", ErrInvalidPolicy, clip(s), name)
		}
		seen[name] = true
		if _, ok := c.sets[name]; ok {
			allowJurisdictions = append(allowJurisdictions, name)
		} else if IsCountry(name) {
			allowCountries = append(allowCountries, name)
		} else {
			return nil, nil, fmt.Errorf("%w %q (known jurisdictions: %s; or an ISO 3166-1 alpha-2 country code such as CH; or ANY)",
				ErrUnknownJurisdiction, clip(strings.TrimSpace(part)), strings.Join(c.Names(), ", "))
		}
	}
	return allowJurisdictions, allowCountries, nil
}

// ValidatePolicy checks every field of p against the catalogue and against
// each other, and reports all problems at once, each naming its field and
// value. It never changes p. Errors wrap ErrInvalidPolicy, and also
// ErrUnknownJurisdiction or ErrUnknownCountry when a name is unknown.
//
// Rules: Replicas in MinReplicas..MaxReplicas; jurisdictions known to c;
// countries assigned upper-case codes; no list holds an element twice;
// leader preferences are region labels; Class is personal or public; the
// policy permits at least one country.
func (c *Catalogue) ValidatePolicy(p Policy) error {
	var problems []error
	add := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }

	if p.Replicas < MinReplicas || p.Replicas > MaxReplicas {
		add("Replicas %d: want %d..%d", p.Replicas, MinReplicas, MaxReplicas)
	}
	unknown := false
	seen := make(map[string]bool)
	for i, j := range p.AllowJurisdictions {
		switch _, ok := c.sets[j]; {
		case seen[j]:
			add("AllowJurisdictions[%d] %q: listed twice", i, j)
		case !ok:
			unknown = true
			add("AllowJurisdictions[%d] %q: %w (known: %s)", i, clip(j), ErrUnknownJurisdiction, strings.Join(c.Names(), ", "))
		}
		seen[j] = true
	}
	for _, list := range []struct {
		field string
		codes []string
	}{{"AllowCountries", p.AllowCountries}, {"DenyCountries", p.DenyCountries}} {
		clear(seen)
		for i, code := range list.codes {
			if seen[code] {
				add("%s[%d] %q: listed twice", list.field, i, code)
			} else if err := checkCountry(fmt.Sprintf("%s[%d]", list.field, i), code); err != nil {
				unknown = true
				problems = append(problems, err)
			}
			seen[code] = true
		}
	}
	clear(seen)
	for i, r := range p.LeaderPreference {
		if seen[r] {
			add("LeaderPreference[%d] %q: listed twice", i, r)
		} else if err := checkLabel(fmt.Sprintf("LeaderPreference[%d]", i), r); err != nil {
			problems = append(problems, err)
		}
		seen[r] = true
	}
	if p.Class != ClassPersonal && p.Class != ClassPublic {
		add("Class %q: want %q or %q", clip(string(p.Class)), ClassPersonal, ClassPublic)
	}
	if !unknown {
		if countries, _ := c.PermittedCountries(p); len(countries) == 0 {
			add("residency=%s deny=%s permits no country", p.residency(), strings.Join(p.DenyCountries, ","))
		}
	}
	if len(problems) > 0 {
		return &listError{kind: ErrInvalidPolicy, problems: problems}
	}
	return nil
}

// permitSet is a policy resolved against a catalogue, for repeated checks.
type permitSet struct {
	anywhere bool
	allow    map[string]bool
	deny     map[string]bool
}

// resolve expands p's allow and deny lists. Unknown names add nothing, so an
// invalid policy permits less, never more.
func (c *Catalogue) resolve(p Policy) permitSet {
	s := permitSet{anywhere: !p.IsRestricted(), deny: make(map[string]bool, len(p.DenyCountries))}
	for _, code := range p.DenyCountries {
		s.deny[code] = true
	}
	if s.anywhere {
		return s
	}
	s.allow = make(map[string]bool)
	for _, j := range p.AllowJurisdictions {
		for _, code := range c.sets[j] {
			s.allow[code] = true
		}
	}
	for _, code := range p.AllowCountries {
		s.allow[code] = true
	}
	return s
}

// permits reports whether an upper-case country code is permitted.
func (s permitSet) permits(country string) bool {
	if !IsCountry(country) || s.deny[country] {
		return false
	}
	return s.anywhere || s.allow[country]
}

// Permits reports whether policy p allows a replica at locality l. It fails
// closed: an invalid locality (see Locality.Validate) is never permitted, and
// unknown names in p permit nothing. Only the country matters; region and
// zone must merely be well formed.
func (c *Catalogue) Permits(p Policy, l Locality) bool {
	if l.Validate() != nil {
		return false
	}
	return c.resolve(p).permits(l.Country)
}

// PermittedCountries returns the sorted codes p permits and whether p is
// unrestricted (anywhere). For an unrestricted policy countries is every
// assigned code but DenyCountries. The caller owns the slice.
func (c *Catalogue) PermittedCountries(p Policy) (countries []string, anywhere bool) {
	s := c.resolve(p)
	if s.anywhere {
		for _, code := range CountryCodes() {
			if !s.deny[code] {
				countries = append(countries, code)
			}
		}
		return countries, true
	}
	for code := range s.allow {
		if s.permits(code) {
			countries = append(countries, code)
		}
	}
	sort.Strings(countries)
	return countries, false
}
