package placement

import (
	"fmt"
	"strings"
)

// Locality is where a node runs. Its country decides which jurisdictions it
// belongs to; region and zone only drive spread and leader preference.
//
// A valid Locality has Country set to an officially assigned ISO 3166-1
// alpha-2 code in upper case; Region and Zone are empty or labels matching
// [a-z0-9][a-z0-9-]{0,62}. Build one with ParseLocality or check one with
// Validate.
type Locality struct {
	Country string // e.g. "IE"; required
	Region  string // e.g. "ie-dublin"; optional
	Zone    string // e.g. "a"; optional, named within its region
}

// maxLabel is the longest region or zone label.
const maxLabel = 63

// ParseLocality parses "country=IE,region=ie-dublin,zone=a". Keys come in any
// order, each at most once; spaces around elements, keys and values are
// ignored; keys are case-insensitive. The country is required and accepted
// in any case, stored upper case. Region and zone are optional and must be
// lower-case labels. Errors wrap ErrInvalidLocality, and also
// ErrUnknownCountry when the country code is not assigned.
func ParseLocality(s string) (Locality, error) {
	var l Locality
	if strings.TrimSpace(s) == "" {
		return Locality{}, fmt.Errorf("%w: empty (want country=CC[,region=R][,zone=Z])", ErrInvalidLocality)
	}
	seen := make(map[string]bool, 3)
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return Locality{}, fmt.Errorf("%w: element %d is empty", ErrInvalidLocality, i+1)
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return Locality{}, fmt.Errorf("%w: element %q is not key=value", ErrInvalidLocality, clip(part))
		}
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimSpace(v)
		switch k {
		case "country", "region", "zone":
		default:
			return Locality{}, fmt.Errorf("%w: unknown key %q (want country, region or zone)", ErrInvalidLocality, clip(k))
		}
		if seen[k] {
			return Locality{}, fmt.Errorf("%w: duplicate key %q", ErrInvalidLocality, k)
		}
		seen[k] = true
		if v == "" {
			return Locality{}, fmt.Errorf("%w: empty value for %q", ErrInvalidLocality, k)
		}
		var err error
		switch k {
		case "country":
			l.Country = strings.ToUpper(v)
			err = checkCountry("country", l.Country)
		case "region":
			l.Region = v
			err = checkLabel("region", v)
		case "zone":
			l.Zone = v
			err = checkLabel("zone", v)
		}
		if err != nil {
			return Locality{}, fmt.Errorf("%w: %w", ErrInvalidLocality, err)
		}
	}
	if l.Country == "" {
		return Locality{}, fmt.Errorf("%w: missing country in %q", ErrInvalidLocality, clip(s))
	}
	return l, nil
}

// String returns the canonical form, e.g. "country=IE,region=ie-dublin,zone=a";
// empty region and zone are left out. ParseLocality reads it back.
func (l Locality) String() string {
	var b strings.Builder
	b.WriteString("country=")
	b.WriteString(l.Country)
	if l.Region != "" {
		b.WriteString(",region=")
		b.WriteString(l.Region)
	}
	if l.Zone != "" {
		b.WriteString(",zone=")
		b.WriteString(l.Zone)
	}
	return b.String()
}

// Validate checks that l is in canonical form: a known upper-case country and
// well-formed region and zone labels. It never changes l. Errors wrap
// ErrInvalidLocality, and also ErrUnknownCountry for a bad country.
func (l Locality) Validate() error {
	if l.Country == "" {
		return fmt.Errorf("%w: missing country", ErrInvalidLocality)
	}
	if err := checkCountry("country", l.Country); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidLocality, err)
	}
	if l.Region != "" {
		if err := checkLabel("region", l.Region); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidLocality, err)
		}
	}
	if l.Zone != "" {
		if err := checkLabel("zone", l.Zone); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidLocality, err)
		}
	}
	return nil
}

// checkCountry reports whether code is an assigned upper-case code; the error
// names field, wraps ErrUnknownCountry and hints at the upper-case form.
func checkCountry(field, code string) error {
	if IsCountry(code) {
		return nil
	}
	if up := strings.ToUpper(code); up != code && IsCountry(up) {
		return fmt.Errorf("%s %q: %w (use upper case %q)", field, clip(code), ErrUnknownCountry, up)
	}
	return fmt.Errorf("%s %q: %w (want an ISO 3166-1 alpha-2 code such as IE)", field, clip(code), ErrUnknownCountry)
}

// checkLabel checks a region or zone label against [a-z0-9][a-z0-9-]{0,62}.
func checkLabel(field, v string) error {
	if isLabel(v) {
		return nil
	}
	return fmt.Errorf("%s %q must match [a-z0-9][a-z0-9-]{0,62}", field, clip(v))
}

func isLabel(v string) bool {
	if len(v) == 0 || len(v) > maxLabel {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0:
		default:
			return false
		}
	}
	return true
}
