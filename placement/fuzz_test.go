package placement

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// refLocality is the documented locality syntax, element by element: it
// returns the locality, or the sentinels the first problem's error wraps.
func refLocality(s string) (Locality, []error) {
	invalid := []error{ErrInvalidLocality}
	if strings.TrimSpace(s) == "" {
		return Locality{}, invalid
	}
	var l Locality
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if !ok || seen[k] || v == "" || (k != "country" && k != "region" && k != "zone") {
			return Locality{}, invalid
		}
		seen[k] = true
		switch k {
		case "country":
			l.Country = strings.ToUpper(v)
			if _, known := countryNames[l.Country]; !known {
				return Locality{}, []error{ErrInvalidLocality, ErrUnknownCountry}
			}
		case "region", "zone":
			if !refLabel(v) {
				return Locality{}, invalid
			}
			if k == "region" {
				l.Region = v
			} else {
				l.Zone = v
			}
		}
	}
	if l.Country == "" {
		return Locality{}, invalid
	}
	return l, nil
}

// refLabel is the documented label rule: [a-z0-9][a-z0-9-]{0,62}.
func refLabel(v string) bool {
	if len(v) == 0 || len(v) > 63 || v[0] == '-' {
		return false
	}
	return strings.Trim(v, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}

// FuzzParseLocality checks ParseLocality against the documented syntax:
// it never panics; it accepts exactly what the syntax allows, with the
// country in upper case; a refusal wraps ErrInvalidLocality, and also
// ErrUnknownCountry when the first problem is a country code that is not
// assigned, and returns the zero Locality; what it accepts validates and
// reads back from its String form.
func FuzzParseLocality(f *testing.F) {
	for _, s := range []string{
		"country=IE,region=ie-dublin,zone=a",
		"zone=a,region=ie-dublin,country=IE",
		" Country = no , region = no-hamar ",
		"country=ie",
		"country=XX",
		"country=IRL",
		"country=X",
		"country=IE;region=ie-dublin",
		"country=IE,country=NO",
		"country=IE,rack=r1",
		"country=IE,,zone=a",
		"country=IE,",
		"country=",
		"country=IE,zone=",
		"country=IE,region=Dublin",
		"country=IE,region=-dublin",
		"country=IE,region=" + strings.Repeat("a", 63),
		"country=IE,region=" + strings.Repeat("a", 64),
		"country=IE,zone=a_b",
		"region=ie-dublin,zone=a",
		"country=XX,region=Bad",
		"region=Bad,country=XX",
		"country=\u0130E", // upper-cases to a different, longer string
		"country=ıe",
		"junk",
		"",
		"   ",
		"=,=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseLocality(s)
		want, wantErr := refLocality(s)
		if err != nil {
			if wantErr == nil {
				t.Fatalf("ParseLocality(%q) refused valid input: %v (want %+v)", s, err, want)
			}
			if got != (Locality{}) {
				t.Fatalf("ParseLocality(%q) returned %+v with its error", s, got)
			}
			if !errors.Is(err, ErrInvalidLocality) {
				t.Fatalf("ParseLocality(%q) error %v does not wrap ErrInvalidLocality", s, err)
			}
			unknown := slices.Contains(wantErr, ErrUnknownCountry)
			if errors.Is(err, ErrUnknownCountry) != unknown {
				t.Fatalf("ParseLocality(%q) error %v: wraps ErrUnknownCountry %v, want %v", s, err, !unknown, unknown)
			}
			return
		}
		if wantErr != nil {
			t.Fatalf("ParseLocality(%q) accepted %+v, want an error wrapping %v", s, got, wantErr)
		}
		if got != want {
			t.Fatalf("ParseLocality(%q) = %+v, want %+v", s, got, want)
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("ParseLocality(%q) = %+v, which does not validate: %v", s, got, err)
		}
		if back, err := ParseLocality(got.String()); err != nil || back != got {
			t.Fatalf("ParseLocality(%q).String() = %q reads back as %+v, %v", s, got.String(), back, err)
		}
	})
}

// FuzzParseResidency checks ParseResidency against a catalogue with one
// operator-defined jurisdiction: it never panics; a refusal wraps
// ErrUnknownJurisdiction or ErrInvalidPolicy, ErrUnknownJurisdiction
// exactly when an element is neither a catalogue name, a country code nor
// ANY; what it accepts lists every element once, upper case and in input
// order, jurisdictions known to the catalogue and assigned country codes,
// and makes a policy that passes ValidatePolicy.
func FuzzParseResidency(f *testing.F) {
	cat, err := DefaultCatalogue().With("NORDIC", []string{"SE", "DK", "FI", "NO", "IS"})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		"EEA", "eea", "EEA,CH", " eu , ch ", "NORDIC,DE", "ANY", "anywhere", "ANY,EU", "EU,ANY",
		"EU,EU", "EU,eu", "CH,ch", "MARS", "XX", "EU,XX", "", " ", ",", "EU,", ",EU", "IE,NO,SE",
		"\u0130E", "nordic", "NORDIC,NORDIC",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		js, cs, err := cat.ParseResidency(s)
		parts := strings.Split(s, ",")
		unknown := false
		for _, p := range parts {
			name := strings.ToUpper(strings.TrimSpace(p))
			_, isJ := cat.Countries(name)
			if name != "" && !isJ && !IsCountry(name) && name != "ANY" && name != "ANYWHERE" {
				unknown = true
			}
		}
		if err != nil {
			if js != nil || cs != nil {
				t.Fatalf("ParseResidency(%q) returned %v %v with its error", s, js, cs)
			}
			if !errors.Is(err, ErrUnknownJurisdiction) && !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("ParseResidency(%q) error %v wraps neither ErrUnknownJurisdiction nor ErrInvalidPolicy", s, err)
			}
			if errors.Is(err, ErrUnknownJurisdiction) && !unknown {
				t.Fatalf("ParseResidency(%q): %v, but every element is known", s, err)
			}
			return
		}
		if unknown {
			t.Fatalf("ParseResidency(%q) accepted an unknown name: %v %v", s, js, cs)
		}
		if len(js)+len(cs) == 0 {
			// Only ANY or ANYWHERE, alone, means every country.
			if n := strings.ToUpper(strings.TrimSpace(s)); n != "ANY" && n != "ANYWHERE" {
				t.Fatalf("ParseResidency(%q) = anywhere", s)
			}
		} else {
			if len(js)+len(cs) != len(parts) {
				t.Fatalf("ParseResidency(%q) = %v %v: not one entry per element", s, js, cs)
			}
			i, j := 0, 0
			for _, p := range parts {
				name := strings.ToUpper(strings.TrimSpace(p))
				switch {
				case i < len(js) && js[i] == name:
					i++
				case j < len(cs) && cs[j] == name:
					j++
				default:
					t.Fatalf("ParseResidency(%q) = %v %v: element %q missing or out of order", s, js, cs, name)
				}
			}
		}
		for _, j := range js {
			if _, ok := cat.Countries(j); !ok {
				t.Fatalf("ParseResidency(%q): unknown jurisdiction %q", s, j)
			}
		}
		for _, c := range cs {
			if !IsCountry(c) {
				t.Fatalf("ParseResidency(%q): unknown country %q", s, c)
			}
		}
		p := Policy{AllowJurisdictions: js, AllowCountries: cs, Replicas: 3, Class: ClassPersonal}
		if err := cat.ValidatePolicy(p); err != nil {
			t.Fatalf("ParseResidency(%q) made policy %v, which does not validate: %v", s, p, err)
		}
	})
}

// FuzzCatalogueWith defines a jurisdiction from a fuzzed name and country
// list (comma-separated). It never panics; a refusal wraps
// ErrInvalidJurisdiction, and ErrUnknownCountry when a code in the list is
// not assigned and the name is acceptable; the catalogue it was called on
// does not change; what it accepts has a name of the documented form, holds
// the listed countries upper case, sorted and once each, and residencies
// can name it.
func FuzzCatalogueWith(f *testing.F) {
	for _, s := range []struct{ name, countries string }{
		{"NORDIC", "SE,DK,FI"},
		{"NORDIC", "se, dk"},
		{"A", "IE"},
		{"X1_-", "IE"},
		{strings.Repeat("A", 64), "IE"},
		{strings.Repeat("A", 65), "IE"},
		{"NORDIC", ""},
		{"NORDIC", "SE,XX"},
		{"NORDIC", "SE,SE"},
		{"NORDIC", "SE,se"},
		{"nordic", "SE"},
		{"_X", "SE"},
		{"EU", "SE"},
		{"EEA", "SE"},
		{"SE", "SE"},
		{"QQ", "SE"},
		{"X1", "SE"},
		{"NORDIC", "SE,SE,XX"},
		{"NORDIC", ","},
		{"ANY", "SE"},
		{"ANYWHERE", "SE"},
		{"", "SE"},
		{"NORD IC", "SE"},
		{"NORDIC", "S\u0130"},
	} {
		f.Add(s.name, s.countries)
	}
	base := DefaultCatalogue()
	baseNames := base.Names()
	f.Fuzz(func(t *testing.T, name, list string) {
		var countries []string
		if list != "" {
			countries = strings.Split(list, ",")
		}
		c, err := base.With(name, countries)
		if !slices.Equal(base.Names(), baseNames) {
			t.Fatalf("With(%q) changed the catalogue it was called on: %v", name, base.Names())
		}
		validName := len(name) >= 1 && len(name) <= 64 && name[0] != '_' && name[0] != '-' &&
			strings.Trim(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == "" &&
			!(len(name) == 2 && strings.Trim(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == "") && // reserved for country codes
			name != "ANY" && name != "ANYWHERE" && !base.IsBuiltin(name)
		var unknown []string
		seen := map[string]bool{}
		dup := false
		firstUnknown := false // the first problem in the list is an unassigned code
		for _, raw := range countries {
			code := strings.ToUpper(strings.TrimSpace(raw))
			if !IsCountry(code) {
				firstUnknown = firstUnknown || (len(unknown) == 0 && !dup)
				unknown = append(unknown, raw)
			}
			dup = dup || seen[code]
			seen[code] = true
		}
		if err != nil {
			if c != nil {
				t.Fatalf("With(%q, %q) returned a catalogue with its error", name, list)
			}
			if !errors.Is(err, ErrInvalidJurisdiction) {
				t.Fatalf("With(%q, %q) error %v does not wrap ErrInvalidJurisdiction", name, list, err)
			}
			if validName && firstUnknown && !errors.Is(err, ErrUnknownCountry) {
				t.Fatalf("With(%q, %q) refused unknown codes %q without ErrUnknownCountry: %v", name, list, unknown, err)
			}
			if validName && len(countries) > 0 && len(unknown) == 0 && !dup {
				t.Fatalf("With(%q, %q) refused a valid definition: %v", name, list, err)
			}
			return
		}
		if !validName || len(countries) == 0 || len(unknown) > 0 || dup {
			t.Fatalf("With(%q, %q) accepted (valid name %v, %d countries, unknown %q, duplicate %v)",
				name, list, validName, len(countries), unknown, dup)
		}
		got, ok := c.Countries(name)
		want := make([]string, 0, len(seen))
		for code := range seen {
			want = append(want, code)
		}
		slices.Sort(want)
		if !ok || !slices.Equal(got, want) {
			t.Fatalf("With(%q, %q): countries %v, want %v", name, list, got, want)
		}
		if js, cs, err := c.ParseResidency(strings.ToLower(name)); err != nil || !slices.Equal(js, []string{name}) || len(cs) != 0 {
			t.Fatalf("ParseResidency(%q) on the new catalogue = %v %v, %v", strings.ToLower(name), js, cs, err)
		}
	})
}
