package placement

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func loc(t *testing.T, s string) Locality {
	t.Helper()
	l, err := ParseLocality(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestPermits(t *testing.T) {
	c := DefaultCatalogue()
	eea := Policy{AllowJurisdictions: []string{EEA}, Replicas: 3, Class: ClassPersonal}
	eeaNoNorway := Policy{AllowJurisdictions: []string{EEA}, DenyCountries: []string{"NO"}, Replicas: 3, Class: ClassPersonal}
	eeaCH := Policy{AllowJurisdictions: []string{EEA}, AllowCountries: []string{"CH"}, Replicas: 3, Class: ClassPersonal}
	onlyCH := Policy{AllowCountries: []string{"CH"}, DenyCountries: []string{"CH"}, Replicas: 1, Class: ClassPublic}
	anywhere := Policy{Replicas: 3, Class: ClassPublic}
	notUS := Policy{DenyCountries: []string{"US"}, Replicas: 3, Class: ClassPublic}
	unknown := Policy{AllowJurisdictions: []string{"NOWHERE"}, Replicas: 3, Class: ClassPublic}

	tests := []struct {
		name string
		p    Policy
		loc  Locality
		want bool
	}{
		{"EEA permits IE", eea, loc(t, "country=IE,region=ie-dublin"), true},
		{"EEA permits NO", eea, loc(t, "country=NO,region=no-hamar"), true},
		{"EEA permits LI", eea, loc(t, "country=LI"), true},
		{"EEA refuses US", eea, loc(t, "country=US,region=us-east"), false},
		{"EEA refuses CH", eea, loc(t, "country=CH"), false},
		{"EEA refuses GB", eea, loc(t, "country=GB"), false},
		{"deny wins over jurisdiction", eeaNoNorway, loc(t, "country=NO"), false},
		{"deny leaves the rest", eeaNoNorway, loc(t, "country=IE"), true},
		{"allow country adds", eeaCH, loc(t, "country=CH"), true},
		{"allow country keeps jurisdiction", eeaCH, loc(t, "country=DE"), true},
		{"deny wins over allow country", onlyCH, loc(t, "country=CH"), false},
		{"anywhere permits US", anywhere, loc(t, "country=US"), true},
		{"anywhere permits IE", anywhere, loc(t, "country=IE"), true},
		{"anywhere minus deny", notUS, loc(t, "country=US"), false},
		{"anywhere minus deny keeps others", notUS, loc(t, "country=JP"), true},
		{"unknown jurisdiction permits nothing", unknown, loc(t, "country=US"), false},
		{"unknown jurisdiction permits nothing in EEA", unknown, loc(t, "country=IE"), false},
		{"invalid locality fails closed", anywhere, Locality{Country: "ie"}, false},
		{"empty locality fails closed", anywhere, Locality{}, false},
		{"bad region fails closed", eea, Locality{Country: "IE", Region: "Dublin"}, false},
	}
	for _, tt := range tests {
		if got := c.Permits(tt.p, tt.loc); got != tt.want {
			t.Errorf("%s: Permits(%v, %v) = %v, want %v", tt.name, tt.p, tt.loc, got, tt.want)
		}
	}
}

func TestPermittedCountries(t *testing.T) {
	c := DefaultCatalogue()
	got, anywhere := c.PermittedCountries(Policy{AllowJurisdictions: []string{EEA}, DenyCountries: []string{"NO"}, AllowCountries: []string{"CH"}})
	if anywhere || len(got) != 30 || slices.Contains(got, "NO") || !slices.Contains(got, "CH") || !slices.IsSorted(got) {
		t.Errorf("EEA+CH-NO = %v, anywhere %v", got, anywhere)
	}
	got, anywhere = c.PermittedCountries(Policy{})
	if !anywhere || len(got) != 249 {
		t.Errorf("anywhere = %d countries, anywhere %v", len(got), anywhere)
	}
	got, anywhere = c.PermittedCountries(Policy{DenyCountries: []string{"US", "CN"}})
	if !anywhere || len(got) != 247 || slices.Contains(got, "US") || slices.Contains(got, "CN") {
		t.Errorf("anywhere but US, CN = %d countries, anywhere %v", len(got), anywhere)
	}
	got, anywhere = c.PermittedCountries(Policy{AllowJurisdictions: []string{"NOWHERE"}})
	if anywhere || len(got) != 0 {
		t.Errorf("unknown jurisdiction = %v, anywhere %v; want nothing", got, anywhere)
	}
}

func TestValidatePolicy(t *testing.T) {
	c, err := DefaultCatalogue().With("NORDICS", []string{"DK", "FI", "IS", "NO", "SE"})
	if err != nil {
		t.Fatal(err)
	}
	good := Policy{AllowJurisdictions: []string{EEA}, Replicas: 3, Class: ClassPersonal}
	with := func(f func(p *Policy)) Policy {
		p := good
		f(&p)
		return p
	}
	tests := []struct {
		name    string
		p       Policy
		wantErr []error
		mention []string
	}{
		{name: "EEA", p: good},
		{name: "anywhere personal", p: Policy{Replicas: 1, Class: ClassPersonal}},
		{name: "custom set", p: with(func(p *Policy) { p.AllowJurisdictions = []string{"NORDICS", EU} })},
		{name: "everything", p: Policy{AllowJurisdictions: []string{EEA}, AllowCountries: []string{"CH"}, DenyCountries: []string{"NO"},
			Replicas: 5, LeaderPreference: []string{"ie-dublin", "de-fra"}, Class: ClassPublic}},
		{name: "even replicas", p: with(func(p *Policy) { p.Replicas = 4 })},
		{name: "deny outside allow", p: with(func(p *Policy) { p.DenyCountries = []string{"US"} })},

		{name: "unknown jurisdiction", p: with(func(p *Policy) { p.AllowJurisdictions = []string{"EEA", "ASIA"} }),
			wantErr: []error{ErrUnknownJurisdiction}, mention: []string{`AllowJurisdictions[1] "ASIA"`, "EEA, EU, NORDICS"}},
		{name: "lower-case jurisdiction", p: with(func(p *Policy) { p.AllowJurisdictions = []string{"eea"} }),
			wantErr: []error{ErrUnknownJurisdiction}, mention: []string{`"eea"`}},
		{name: "jurisdiction twice", p: with(func(p *Policy) { p.AllowJurisdictions = []string{"EEA", "EEA"} }),
			mention: []string{`AllowJurisdictions[1] "EEA": listed twice`}},
		{name: "zero replicas", p: with(func(p *Policy) { p.Replicas = 0 }), mention: []string{"Replicas 0"}},
		{name: "eight replicas", p: with(func(p *Policy) { p.Replicas = 8 }), mention: []string{"Replicas 8"}},
		{name: "no class", p: with(func(p *Policy) { p.Class = "" }), mention: []string{`Class ""`}},
		{name: "bad class", p: with(func(p *Policy) { p.Class = "secret" }), mention: []string{`Class "secret"`}},
		{name: "lower-case country", p: with(func(p *Policy) { p.AllowCountries = []string{"ch"} }),
			wantErr: []error{ErrUnknownCountry}, mention: []string{`AllowCountries[0] "ch"`, `"CH"`}},
		{name: "unknown deny", p: with(func(p *Policy) { p.DenyCountries = []string{"NO", "XX"} }),
			wantErr: []error{ErrUnknownCountry}, mention: []string{`DenyCountries[1] "XX"`}},
		{name: "deny twice", p: with(func(p *Policy) { p.DenyCountries = []string{"NO", "NO"} }),
			mention: []string{`DenyCountries[1] "NO": listed twice`}},
		{name: "bad leader region", p: with(func(p *Policy) { p.LeaderPreference = []string{"ie-dublin", "IE Dublin"} }),
			mention: []string{`LeaderPreference[1] "IE Dublin"`}},
		{name: "leader twice", p: with(func(p *Policy) { p.LeaderPreference = []string{"ie-dublin", "ie-dublin"} }),
			mention: []string{`LeaderPreference[1] "ie-dublin": listed twice`}},
		{name: "permits nothing", p: with(func(p *Policy) {
			p.AllowJurisdictions = nil
			p.AllowCountries = []string{"CH"}
			p.DenyCountries = []string{"CH"}
		}), mention: []string{"permits no country"}},
		{name: "several problems", p: Policy{AllowJurisdictions: []string{"ASIA"}, Replicas: 9, Class: "x"},
			wantErr: []error{ErrUnknownJurisdiction}, mention: []string{`"ASIA"`, "Replicas 9", `Class "x"`}},
	}
	for _, tt := range tests {
		before := clonePolicy(tt.p)
		err := c.ValidatePolicy(tt.p)
		if !reflect.DeepEqual(before, tt.p) {
			t.Fatalf("%s: ValidatePolicy modified the policy", tt.name)
		}
		if tt.mention == nil {
			if err != nil {
				t.Errorf("%s: ValidatePolicy(%v) = %v", tt.name, tt.p, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("%s: ValidatePolicy(%v) = %v, want ErrInvalidPolicy", tt.name, tt.p, err)
			continue
		}
		for _, want := range tt.wantErr {
			if !errors.Is(err, want) {
				t.Errorf("%s: error %q does not wrap %q", tt.name, err, want)
			}
		}
		for _, m := range tt.mention {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%s: error %q does not mention %s", tt.name, err, m)
			}
		}
	}
	// The built-in catalogue does not know an operator's set.
	if err := DefaultCatalogue().ValidatePolicy(Policy{AllowJurisdictions: []string{"NORDICS"}, Replicas: 3, Class: ClassPublic}); !errors.Is(err, ErrUnknownJurisdiction) {
		t.Errorf("NORDICS in the default catalogue: %v", err)
	}
}

func clonePolicy(p Policy) Policy {
	p.AllowJurisdictions = slices.Clone(p.AllowJurisdictions)
	p.AllowCountries = slices.Clone(p.AllowCountries)
	p.DenyCountries = slices.Clone(p.DenyCountries)
	p.LeaderPreference = slices.Clone(p.LeaderPreference)
	return p
}

func TestParseResidency(t *testing.T) {
	tests := []struct {
		in        string
		jur, ctry []string
		wantErr   error
		mention   []string
	}{
		{in: "EEA", jur: []string{"EEA"}},
		{in: "eea, ch", jur: []string{"EEA"}, ctry: []string{"CH"}},
		{in: "CH,EU,GB", jur: []string{"EU"}, ctry: []string{"CH", "GB"}},
		{in: "ANY"},
		{in: "anywhere"},
		{in: " Any "},
		{in: "EEA,ASIA", wantErr: ErrUnknownJurisdiction, mention: []string{`"ASIA"`, "EEA, EU", "ANY"}},
		{in: "XX", wantErr: ErrUnknownJurisdiction, mention: []string{`"XX"`}},
		{in: "", wantErr: ErrInvalidPolicy, mention: []string{"empty"}},
		{in: "EEA,", wantErr: ErrInvalidPolicy, mention: []string{"element 2"}},
		{in: "ANY,EEA", wantErr: ErrInvalidPolicy, mention: []string{"ANY"}},
		{in: "EEA,eea", wantErr: ErrInvalidPolicy, mention: []string{"EEA twice"}},
	}
	for _, tt := range tests {
		jur, ctry, err := ParseResidency(tt.in)
		if tt.wantErr == nil {
			if err != nil || !slices.Equal(jur, tt.jur) || !slices.Equal(ctry, tt.ctry) {
				t.Errorf("ParseResidency(%q) = %v, %v, %v; want %v, %v", tt.in, jur, ctry, err, tt.jur, tt.ctry)
			}
			continue
		}
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("ParseResidency(%q) = %v, want %v", tt.in, err, tt.wantErr)
			continue
		}
		if jur != nil || ctry != nil {
			t.Errorf("ParseResidency(%q) returned lists with its error", tt.in)
		}
		for _, m := range tt.mention {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("ParseResidency(%q) error %q does not mention %s", tt.in, err, m)
			}
		}
	}

	c, err := DefaultCatalogue().With("NORDICS", []string{"DK", "NO"})
	if err != nil {
		t.Fatal(err)
	}
	jur, ctry, err := c.ParseResidency("nordics,CH")
	if err != nil || !slices.Equal(jur, []string{"NORDICS"}) || !slices.Equal(ctry, []string{"CH"}) {
		t.Errorf("custom ParseResidency = %v, %v, %v", jur, ctry, err)
	}
	if _, _, err := c.ParseResidency("MARS"); err == nil || !strings.Contains(err.Error(), "NORDICS") {
		t.Errorf("unknown name error %v should list NORDICS", err)
	}
}

func TestPolicyString(t *testing.T) {
	tests := []struct {
		p    Policy
		want string
	}{
		{Policy{AllowJurisdictions: []string{"EEA"}, Replicas: 3, Class: ClassPersonal}, "residency=EEA replicas=3 class=personal"},
		{Policy{Replicas: 1, Class: ClassPublic}, "residency=ANY replicas=1 class=public"},
		{Policy{AllowJurisdictions: []string{"EEA"}, AllowCountries: []string{"CH"}, DenyCountries: []string{"NO"}, Replicas: 5,
			LeaderPreference: []string{"ie-dublin", "de-fra"}, Class: ClassPersonal},
			"residency=EEA,CH deny=NO replicas=5 leaders=ie-dublin,de-fra class=personal"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestIsRestricted(t *testing.T) {
	for _, tt := range []struct {
		p    Policy
		want bool
	}{
		{Policy{}, false},
		{Policy{DenyCountries: []string{"US"}}, false},
		{Policy{AllowJurisdictions: []string{"EEA"}}, true},
		{Policy{AllowCountries: []string{"CH"}}, true},
	} {
		if got := tt.p.IsRestricted(); got != tt.want {
			t.Errorf("%v.IsRestricted() = %v", tt.p, got)
		}
	}
}

func TestParseDataClass(t *testing.T) {
	for in, want := range map[string]DataClass{"personal": ClassPersonal, "Public": ClassPublic, " PERSONAL ": ClassPersonal} {
		if got, err := ParseDataClass(in); err != nil || got != want {
			t.Errorf("ParseDataClass(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "secret", "pii"} {
		if _, err := ParseDataClass(in); !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("ParseDataClass(%q) = %v, want ErrInvalidPolicy", in, err)
		}
	}
}
