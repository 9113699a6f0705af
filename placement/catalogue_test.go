package placement

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestDefaultCatalogue(t *testing.T) {
	c := DefaultCatalogue()
	if got := c.Names(); !slices.Equal(got, []string{"EEA", "EU"}) {
		t.Fatalf("Names() = %v", got)
	}
	eu, ok := c.Countries(EU)
	if !ok || len(eu) != 27 {
		t.Fatalf("EU = %v, %v; want 27 member states", eu, ok)
	}
	eea, ok := c.Countries(EEA)
	if !ok || len(eea) != 30 {
		t.Fatalf("EEA = %v, %v; want 30 countries", eea, ok)
	}
	for _, code := range eu {
		if !IsCountry(code) || !slices.Contains(eea, code) {
			t.Errorf("EU member %q is unknown or missing from the EEA", code)
		}
	}
	for _, code := range []string{"NO", "IS", "LI"} {
		if !slices.Contains(eea, code) {
			t.Errorf("EEA lacks %s", code)
		}
		if slices.Contains(eu, code) {
			t.Errorf("EU holds %s", code)
		}
	}
	for _, code := range []string{"GB", "CH", "US"} {
		if slices.Contains(eea, code) {
			t.Errorf("EEA holds %s", code)
		}
	}
	if !slices.IsSorted(eu) || !slices.IsSorted(eea) {
		t.Error("member lists are not sorted")
	}
	if _, ok := c.Countries("eea"); ok {
		t.Error("Countries is case-insensitive; names are exact")
	}
	if !c.IsBuiltin(EU) || c.IsBuiltin("NORDICS") {
		t.Error("IsBuiltin wrong")
	}

	for country, want := range map[string][]string{
		"IE": {"EEA", "EU"},
		"NO": {"EEA"},
		"LI": {"EEA"},
		"US": nil,
		"CH": nil,
		"ie": nil,
	} {
		if got := c.JurisdictionsOf(country); !slices.Equal(got, want) {
			t.Errorf("JurisdictionsOf(%q) = %v, want %v", country, got, want)
		}
	}

	eu[0] = "US"
	if again, _ := c.Countries(EU); again[0] == "US" {
		t.Error("Countries shares the catalogue's slice")
	}
	if DefaultCatalogue().JurisdictionsOf("US") != nil {
		t.Error("catalogues share state")
	}
}

func TestCatalogueWith(t *testing.T) {
	base := DefaultCatalogue()
	c, err := base.With("NORDICS", []string{"dk", "FI", " is ", "NO", "SE"})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Countries("NORDICS"); !slices.Equal(got, []string{"DK", "FI", "IS", "NO", "SE"}) {
		t.Errorf("NORDICS = %v", got)
	}
	if got := c.JurisdictionsOf("NO"); !slices.Equal(got, []string{"EEA", "NORDICS"}) {
		t.Errorf("JurisdictionsOf(NO) = %v", got)
	}
	if got := c.JurisdictionsOf("DK"); !slices.Equal(got, []string{"EEA", "EU", "NORDICS"}) {
		t.Errorf("JurisdictionsOf(DK) = %v", got)
	}
	if got := c.Names(); !slices.Equal(got, []string{"EEA", "EU", "NORDICS"}) {
		t.Errorf("Names() = %v", got)
	}
	// The original is unchanged.
	if _, ok := base.Countries("NORDICS"); ok || len(base.JurisdictionsOf("NO")) != 1 {
		t.Error("With modified its receiver")
	}
	c2, err := c.With("EEA_CH-2", []string{"CH"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c2.JurisdictionsOf("CH"); !slices.Equal(got, []string{"EEA_CH-2"}) {
		t.Errorf("JurisdictionsOf(CH) = %v", got)
	}

	tests := []struct {
		name      string
		countries []string
		wantErr   error
		mention   string
	}{
		{"", []string{"IE"}, ErrInvalidJurisdiction, `""`},
		{"nordics", []string{"IE"}, ErrInvalidJurisdiction, `"nordics"`},
		{"MY SET", []string{"IE"}, ErrInvalidJurisdiction, `"MY SET"`},
		{"_X", []string{"IE"}, ErrInvalidJurisdiction, `"_X"`},
		{strings.Repeat("A", 65), []string{"IE"}, ErrInvalidJurisdiction, "1 to 64"},
		{"IE", []string{"IE"}, ErrInvalidJurisdiction, "country code"},
		{"XQ", []string{"IE"}, ErrInvalidJurisdiction, "two-letter"},
		{"EU", []string{"IE"}, ErrInvalidJurisdiction, "built in"},
		{"EEA", []string{"IE"}, ErrInvalidJurisdiction, "built in"},
		{"ANY", []string{"IE"}, ErrInvalidJurisdiction, "reserved"},
		{"NORDICS", []string{"IE"}, ErrInvalidJurisdiction, "already defined"},
		{"EMPTY", nil, ErrInvalidJurisdiction, "no countries"},
		{"BAD", []string{"IE", "XX"}, ErrUnknownCountry, `"XX"`},
		{"BAD", []string{"IE", "EU"}, ErrUnknownCountry, `"EU"`},
		{"BAD", []string{"IE", "ie"}, ErrInvalidJurisdiction, "twice"},
	}
	for _, tt := range tests {
		got, err := c.With(tt.name, tt.countries)
		if err == nil {
			t.Errorf("With(%q, %v) succeeded, want %v", tt.name, tt.countries, tt.wantErr)
			continue
		}
		if got != nil {
			t.Errorf("With(%q, %v) returned a catalogue with its error", tt.name, tt.countries)
		}
		if !errors.Is(err, tt.wantErr) || !errors.Is(err, ErrInvalidJurisdiction) {
			t.Errorf("With(%q, %v) = %v, want %v", tt.name, tt.countries, err, tt.wantErr)
		}
		if !strings.Contains(err.Error(), tt.mention) {
			t.Errorf("With(%q, %v) = %q, should mention %s", tt.name, tt.countries, err, tt.mention)
		}
	}
}
