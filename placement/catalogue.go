package placement

import (
	"fmt"
	"sort"
	"strings"
)

// Built-in jurisdiction names.
const (
	EU  = "EU"  // the 27 member states of the European Union
	EEA = "EEA" // the European Economic Area: EU plus IS, LI and NO
)

// euMembers are the member states of the European Union.
var euMembers = []string{
	"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "IE", "IT",
	"LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "HU",
}

// eeaExtra are the EEA members outside the EU.
var eeaExtra = []string{"IS", "LI", "NO"}

// maxJurisdictionName is the longest operator-defined jurisdiction name.
const maxJurisdictionName = 64

// Catalogue maps jurisdiction names to sets of countries: the built-ins (EU,
// EEA) plus sets an operator defines. A Catalogue is immutable: With returns
// a new one, so a *Catalogue may be shared between goroutines freely. The
// zero Catalogue is empty; DefaultCatalogue holds the built-ins.
type Catalogue struct {
	sets    map[string][]string // name -> sorted member codes
	builtin map[string]bool     // names that are built in
	of      map[string][]string // country -> sorted names holding it
}

// DefaultCatalogue returns a catalogue with the built-in jurisdictions EU and
// EEA and no operator-defined sets.
func DefaultCatalogue() *Catalogue {
	eu := append([]string(nil), euMembers...)
	eea := append(append([]string(nil), euMembers...), eeaExtra...)
	sort.Strings(eu)
	sort.Strings(eea)
	c := &Catalogue{
		sets:    map[string][]string{EU: eu, EEA: eea},
		builtin: map[string]bool{EU: true, EEA: true},
	}
	c.index()
	return c
}

// With returns a copy of c that also holds the operator-defined jurisdiction
// name = countries; c is unchanged. The name is 1 to 64 characters of upper-
// case letters, digits, '_' and '-', starting with a letter or digit; it must
// not be a two-letter name (reserved for country codes), a built-in, ANY,
// ANYWHERE or a name c already holds. Countries are ISO 3166-1 alpha-2 codes
// in any case (stored upper case), at least one, each once. Errors wrap
// ErrInvalidJurisdiction, and ErrUnknownCountry for an unassigned code.
func (c *Catalogue) With(name string, countries []string) (*Catalogue, error) {
	if err := c.checkNewName(name); err != nil {
		return nil, err
	}
	if len(countries) == 0 {
		return nil, fmt.Errorf("%w: %q has no countries", ErrInvalidJurisdiction, name)
	}
	set := make([]string, 0, len(countries))
	seen := make(map[string]bool, len(countries))
	for i, raw := range countries {
		code := strings.ToUpper(strings.TrimSpace(raw))
		if !IsCountry(code) {
			return nil, fmt.Errorf("%w: %q: country %d %q: %w", ErrInvalidJurisdiction, name, i+1, clip(raw), ErrUnknownCountry)
		}
		if seen[code] {
			return nil, fmt.Errorf("%w: %q: country %q listed twice", ErrInvalidJurisdiction, name, code)
		}
		seen[code] = true
		set = append(set, code)
	}
	sort.Strings(set)

	out := &Catalogue{
		sets:    make(map[string][]string, len(c.sets)+1),
		builtin: c.builtin,
	}
	for k, v := range c.sets {
		out.sets[k] = v // member slices are never modified, so sharing is safe
	}
	out.sets[name] = set
	out.index()
	return out, nil
}

// checkNewName validates the name of an operator-defined jurisdiction.
func (c *Catalogue) checkNewName(name string) error {
	if name == "" || len(name) > maxJurisdictionName {
		return fmt.Errorf("%w: name %q must be 1 to %d characters", ErrInvalidJurisdiction, clip(name), maxJurisdictionName)
	}
	for i := 0; i < len(name); i++ {
		ch := name[i]
		switch {
		case ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9':
		case (ch == '_' || ch == '-') && i > 0:
		default:
			return fmt.Errorf("%w: name %q must be upper-case letters, digits, '_' or '-', starting with a letter or digit", ErrInvalidJurisdiction, clip(name))
		}
	}
	switch {
	case c.builtin[name]:
		return fmt.Errorf("%w: name %q is built in", ErrInvalidJurisdiction, name)
	case IsCountry(name):
		return fmt.Errorf("%w: name %q is a country code (%s)", ErrInvalidJurisdiction, name, countryNames[name])
	case len(name) == 2 && isUpperAlpha(name):
		return fmt.Errorf("%w: name %q: two-letter names are reserved for country codes", ErrInvalidJurisdiction, name)
	case name == "ANY" || name == "ANYWHERE":
		return fmt.Errorf("%w: name %q is reserved for policies without residency", ErrInvalidJurisdiction, name)
	}
	if _, ok := c.sets[name]; ok {
		return fmt.Errorf("%w: name %q is already defined", ErrInvalidJurisdiction, name)
	}
	return nil
}

func isUpperAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// index rebuilds the country -> jurisdictions map.
func (c *Catalogue) index() {
	c.of = make(map[string][]string)
	for _, name := range c.Names() {
		for _, code := range c.sets[name] {
			c.of[code] = append(c.of[code], name)
		}
	}
}

// JurisdictionsOf returns the sorted names of the jurisdictions that hold
// country (an upper-case code), or nil if none does. The caller owns the slice.
func (c *Catalogue) JurisdictionsOf(country string) []string {
	js := c.of[country]
	if len(js) == 0 {
		return nil
	}
	return append([]string(nil), js...)
}

// Countries returns the sorted member codes of a jurisdiction and whether the
// catalogue holds that name (exact, upper case). The caller owns the slice.
func (c *Catalogue) Countries(jurisdiction string) ([]string, bool) {
	set, ok := c.sets[jurisdiction]
	if !ok {
		return nil, false
	}
	return append([]string(nil), set...), true
}

// Names returns every jurisdiction name in the catalogue, sorted.
func (c *Catalogue) Names() []string {
	out := make([]string, 0, len(c.sets))
	for name := range c.sets {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// IsBuiltin reports whether name is a built-in jurisdiction (EU, EEA).
func (c *Catalogue) IsBuiltin(name string) bool { return c.builtin[name] }
