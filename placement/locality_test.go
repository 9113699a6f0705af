package placement

import (
	"errors"
	"strings"
	"testing"
)

func TestParseLocality(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := []struct {
		in      string
		want    Locality
		wantErr []error  // every sentinel the error must wrap
		mention []string // parts the message must name
	}{
		{in: "country=IE,region=ie-dublin,zone=a", want: Locality{"IE", "ie-dublin", "a"}},
		{in: "zone=a,region=ie-dublin,country=IE", want: Locality{"IE", "ie-dublin", "a"}},
		{in: "country=ie", want: Locality{Country: "IE"}},
		{in: " Country = no , region = no-hamar ", want: Locality{Country: "NO", Region: "no-hamar"}},
		{in: "country=US,zone=use1-az1", want: Locality{Country: "US", Zone: "use1-az1"}},
		{in: "country=IE,region=" + long[:63], want: Locality{Country: "IE", Region: long[:63]}},

		{in: "country=XX", wantErr: []error{ErrInvalidLocality, ErrUnknownCountry}, mention: []string{`"XX"`}},
		{in: "country=IRL", wantErr: []error{ErrInvalidLocality, ErrUnknownCountry}, mention: []string{`"IRL"`}},
		{in: "region=ie-dublin,zone=a", wantErr: []error{ErrInvalidLocality}, mention: []string{"missing country"}},
		{in: "country=IE,country=NO", wantErr: []error{ErrInvalidLocality}, mention: []string{"duplicate", `"country"`}},
		{in: "country=IE,region=a,region=b", wantErr: []error{ErrInvalidLocality}, mention: []string{"duplicate", `"region"`}},
		{in: "junk", wantErr: []error{ErrInvalidLocality}, mention: []string{`"junk"`}},
		{in: "", wantErr: []error{ErrInvalidLocality}, mention: []string{"empty"}},
		{in: "   ", wantErr: []error{ErrInvalidLocality}, mention: []string{"empty"}},
		{in: "country=IE,,zone=a", wantErr: []error{ErrInvalidLocality}, mention: []string{"element 2"}},
		{in: "country=IE,", wantErr: []error{ErrInvalidLocality}, mention: []string{"element 2"}},
		{in: "country=IE,rack=r1", wantErr: []error{ErrInvalidLocality}, mention: []string{`"rack"`}},
		{in: "country=", wantErr: []error{ErrInvalidLocality}, mention: []string{"empty value", `"country"`}},
		{in: "country=IE,zone=", wantErr: []error{ErrInvalidLocality}, mention: []string{"empty value", `"zone"`}},
		{in: "country=IE,region=Dublin", wantErr: []error{ErrInvalidLocality}, mention: []string{"region", `"Dublin"`}},
		{in: "country=IE,region=-dublin", wantErr: []error{ErrInvalidLocality}, mention: []string{"region"}},
		{in: "country=IE,zone=a_b", wantErr: []error{ErrInvalidLocality}, mention: []string{"zone", `"a_b"`}},
		{in: "country=IE,region=" + long, wantErr: []error{ErrInvalidLocality}, mention: []string{"region"}},
		{in: "country=IE;region=ie-dublin", wantErr: []error{ErrInvalidLocality, ErrUnknownCountry}},
	}
	for _, tt := range tests {
		got, err := ParseLocality(tt.in)
		if tt.wantErr == nil {
			if err != nil {
				t.Errorf("ParseLocality(%q): %v", tt.in, err)
			} else if got != tt.want {
				t.Errorf("ParseLocality(%q) = %+v, want %+v", tt.in, got, tt.want)
			} else if err := got.Validate(); err != nil {
				t.Errorf("ParseLocality(%q) result does not validate: %v", tt.in, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("ParseLocality(%q) = %+v, want an error", tt.in, got)
			continue
		}
		if got != (Locality{}) {
			t.Errorf("ParseLocality(%q) returned %+v with its error", tt.in, got)
		}
		for _, want := range tt.wantErr {
			if !errors.Is(err, want) {
				t.Errorf("ParseLocality(%q) error %q does not wrap %q", tt.in, err, want)
			}
		}
		for _, m := range tt.mention {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("ParseLocality(%q) error %q does not mention %s", tt.in, err, m)
			}
		}
	}
}

func TestLocalityStringRoundTrip(t *testing.T) {
	for _, l := range []Locality{
		{Country: "IE"},
		{Country: "IE", Region: "ie-dublin"},
		{Country: "NO", Region: "no-hamar", Zone: "b"},
		{Country: "US", Zone: "z1"},
	} {
		s := l.String()
		got, err := ParseLocality(s)
		if err != nil || got != l {
			t.Errorf("ParseLocality(%q) = %+v, %v; want %+v", s, got, err, l)
		}
	}
	if got := (Locality{"IE", "ie-dublin", "a"}).String(); got != "country=IE,region=ie-dublin,zone=a" {
		t.Errorf("String() = %q", got)
	}
}

func TestLocalityValidate(t *testing.T) {
	tests := []struct {
		l       Locality
		wantErr error
		mention string
	}{
		{l: Locality{Country: "IE", Region: "ie-dublin", Zone: "a"}},
		{l: Locality{Country: "NO"}},
		{l: Locality{}, wantErr: ErrInvalidLocality, mention: "missing country"},
		{l: Locality{Country: "ie"}, wantErr: ErrUnknownCountry, mention: `upper case "IE"`},
		{l: Locality{Country: "XX"}, wantErr: ErrUnknownCountry, mention: `"XX"`},
		{l: Locality{Country: "IE", Region: "IE-Dublin"}, wantErr: ErrInvalidLocality, mention: `"IE-Dublin"`},
		{l: Locality{Country: "IE", Zone: "a b"}, wantErr: ErrInvalidLocality, mention: `"a b"`},
	}
	for _, tt := range tests {
		before := tt.l
		err := tt.l.Validate()
		if tt.l != before {
			t.Fatalf("Validate changed its receiver")
		}
		if tt.wantErr == nil {
			if err != nil {
				t.Errorf("%+v.Validate() = %v", tt.l, err)
			}
			continue
		}
		if !errors.Is(err, tt.wantErr) || !errors.Is(err, ErrInvalidLocality) {
			t.Errorf("%+v.Validate() = %v, want %v", tt.l, err, tt.wantErr)
		} else if !strings.Contains(err.Error(), tt.mention) {
			t.Errorf("%+v.Validate() = %q, should mention %s", tt.l, err, tt.mention)
		}
	}
}

func TestCountries(t *testing.T) {
	codes := CountryCodes()
	if len(codes) != 249 {
		t.Fatalf("%d country codes, want the 249 officially assigned", len(codes))
	}
	for i, c := range codes {
		if len(c) != 2 || !isUpperAlpha(c) {
			t.Errorf("bad code %q", c)
		}
		if i > 0 && codes[i-1] >= c {
			t.Errorf("codes not sorted and unique at %q", c)
		}
		if name, ok := CountryName(c); !ok || name == "" {
			t.Errorf("CountryName(%q) = %q, %v", c, name, ok)
		}
	}
	for code, want := range map[string]string{"IE": "Ireland", "NO": "Norway", "CH": "Switzerland", "DE": "Germany", "AX": "Åland Islands"} {
		if got, ok := CountryName(code); !ok || got != want {
			t.Errorf("CountryName(%q) = %q, %v; want %q", code, got, ok, want)
		}
	}
	for _, bad := range []string{"ie", "XX", "EU", "UK", "", "IRL"} {
		if name, ok := CountryName(bad); ok {
			t.Errorf("CountryName(%q) = %q, want not found", bad, name)
		}
	}
	codes[0] = "ZZ"
	if CountryCodes()[0] == "ZZ" {
		t.Error("CountryCodes shares its slice")
	}
}
