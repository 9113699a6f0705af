package access

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

var eea = []string{"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IS", "IT",
	"LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK"}

func users() *Keyspace {
	return &Keyspace{Name: "users", Personal: true, ResidencyCountries: eea}
}

func videos() *Keyspace {
	return &Keyspace{Name: "videos", ResidencyAnywhere: true}
}

func user(name, country string, roles ...Role) Caller {
	return Caller{Kind: User, Name: name, Country: country, Roles: roles}
}

func TestDecide(t *testing.T) {
	alice := user("alice", "IE", RoleReader, RoleWriter)
	chen := user("chen", "CN", RoleReader)
	sam := user("sam", "US", RoleReader, RoleWriter)
	nora := user("nora", "NO", RoleAuditor)
	olav := user("olav", "NO", RoleAdmin)
	node := Caller{Kind: Node, Name: "ie-1", Country: "IE"}
	usNode := Caller{Kind: Node, Name: "us-1", Country: "US"}
	usVia := func(c Caller) Caller { n := usNode; n.OnBehalfOf = &c; return n }
	viaNode := func(c Caller) Caller { n := node; n.OnBehalfOf = &c; return n }
	onlyIE := &Keyspace{Name: "ie-only", Personal: true, ResidencyCountries: eea, Access: Policy{CallerCountries: []string{"IE"}}}
	auditorRead := &Keyspace{Name: "odd", ResidencyAnywhere: true, Access: Policy{ReadRoles: []Role{RoleAuditor}}}
	for _, tc := range []struct {
		name   string
		c      Caller
		op     Op
		ks     *Keyspace
		allow  bool
		rule   Rule
		reason string // substring of the reason
	}{
		{"reader in IE reads users", alice, Read, users(), true, RuleAllowed, ""},
		{"writer in IE writes users", alice, Write, users(), true, RuleAllowed, ""},
		{"reader in CN refused users", chen, Read, users(), false, RuleCallerJurisdiction, "works from CN"},
		{"reader in CN reads videos", chen, Read, videos(), true, RuleAllowed, ""},
		{"reader in CN may not write videos", chen, Write, videos(), false, RuleRole, "needs role writer"},
		{"writer in US refused users", sam, Write, users(), false, RuleCallerJurisdiction, "works from US"},
		{"auditor reads no users", nora, Read, users(), false, RuleRole, "needs role reader"},
		{"auditor reads no videos", nora, Read, videos(), false, RuleRole, ""},
		{"auditor not even where listed", nora, Read, auditorRead, false, RuleRole, ""},
		{"auditor verifies", nora, Proof, nil, true, RuleAllowed, ""},
		{"auditor sees status", nora, Status, nil, true, RuleAllowed, ""},
		{"auditor may not administer", nora, Admin, nil, false, RuleRole, "needs role admin"},
		{"admin administers", olav, Admin, nil, true, RuleAllowed, ""},
		{"admin reads no data", olav, Read, users(), false, RuleRole, ""},
		{"reader sees no status", alice, Status, nil, false, RuleRole, ""},
		{"reader routes", chen, Route, nil, true, RuleAllowed, ""},
		{"user calls no internal", olav, Internal, nil, false, RuleNodeOnly, ""},
		{"node calls internal", node, Internal, nil, true, RuleAllowed, ""},
		{"node is not a reader", node, Read, videos(), false, RuleNodeNotUser, "not a user"},
		{"node is not an admin", node, Admin, nil, false, RuleNodeNotUser, ""},
		{"node forwards for alice", viaNode(alice), Read, users(), true, RuleAllowed, ""},
		{"node forwards for chen: decided again", viaNode(chen), Read, users(), false, RuleCallerJurisdiction, ""},
		{"node forwards no admin", viaNode(olav), Admin, nil, false, RuleNodeNotUser, ""},
		{"US node forging alice on users", usVia(alice), Read, users(), false, RuleNodeNotUser, "outside the residency"},
		{"US node forwards videos", usVia(chen), Read, videos(), true, RuleAllowed, ""},
		{"US node scans users internally", usNode, Internal, users(), false, RuleNodeNotUser, "outside the residency"},
		{"IE node scans users internally", node, Internal, users(), true, RuleAllowed, ""},
		{"narrower caller countries", user("ola", "NO", RoleReader), Read, onlyIE, false, RuleCallerJurisdiction, ""},
		{"narrower caller countries allow IE", alice, Read, onlyIE, true, RuleAllowed, ""},
		{"user without country refused personal", user("x", "", RoleReader), Read, users(), false, RuleCallerJurisdiction, "no country"},
		{"user without roles", user("x", "IE"), Read, users(), false, RuleRole, "roles none"},
		{"data op without keyspace", alice, Read, nil, false, RuleDefaultDeny, ""},
		{"unknown op", alice, Op(99), nil, false, RuleDefaultDeny, ""},
		{"unknown kind", Caller{Kind: Kind(7)}, Read, videos(), false, RuleDefaultDeny, ""},
		{"insecure mode", Caller{}, Admin, nil, true, RuleInsecure, "not attested"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.c, tc.op, tc.ks)
			if d.Allowed != tc.allow || d.Rule != tc.rule || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("Decide = %+v, want allowed=%v rule=%s reason containing %q", d, tc.allow, tc.rule, tc.reason)
			}
			if !d.Allowed && !strings.Contains(d.Error(), string(tc.rule)) {
				t.Fatalf("refusal %q does not name its rule", d.Error())
			}
		})
	}
}

var propCountries = []string{"IE", "NO", "DE", "FR", "US", "CN", "CH", "GB", ""}
var propRoles = []Role{RoleReader, RoleWriter, RoleAdmin, RoleAuditor, "bogus"}

func randomCaller(rng *rand.Rand, depth int) Caller {
	c := Caller{Kind: Kind(rng.IntN(4)), Name: "c", Country: propCountries[rng.IntN(len(propCountries))]}
	for _, r := range propRoles {
		if rng.IntN(3) == 0 {
			c.Roles = append(c.Roles, r)
		}
	}
	if c.Kind == Node && depth == 0 && rng.IntN(2) == 0 {
		o := randomCaller(rng, 1)
		c.OnBehalfOf = &o
	}
	return c
}

func randomSet(rng *rand.Rand) []string {
	var out []string
	for _, c := range propCountries[:len(propCountries)-1] {
		if rng.IntN(2) == 0 {
			out = append(out, c)
		}
	}
	return out
}

func randomKeyspace(rng *rand.Rand) *Keyspace {
	if rng.IntN(10) == 0 {
		return nil
	}
	ks := &Keyspace{Name: "ks", Personal: rng.IntN(2) == 0, ResidencyAnywhere: rng.IntN(4) == 0}
	if !ks.ResidencyAnywhere {
		ks.ResidencyCountries = randomSet(rng)
	}
	if rng.IntN(2) == 0 {
		ks.Access.CallerCountries = randomSet(rng)
	}
	ks.Access.CallerAnywhere = rng.IntN(6) == 0
	for _, r := range propRoles {
		if rng.IntN(4) == 0 {
			ks.Access.ReadRoles = append(ks.Access.ReadRoles, r)
		}
		if rng.IntN(4) == 0 {
			ks.Access.WriteRoles = append(ks.Access.WriteRoles, r)
		}
	}
	return ks
}

// TestDecideProperties checks, over random callers and keyspaces: Decide
// is deterministic; it never lets a user (directly or through a node) read
// or write a personal keyspace from a country outside the keyspace's
// caller jurisdictions (its residency by default), never lets an auditor
// or a bare node touch data, and allows only what a rule allows.
func TestDecideProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(26, 1))
	for range 200000 {
		c, op, ks := randomCaller(rng, 0), Op(rng.IntN(9)), randomKeyspace(rng)
		d := Decide(c, op, ks)
		if d2 := Decide(c, op, ks); d != d2 {
			t.Fatalf("not deterministic: %+v then %+v", d, d2)
		}
		if !d.Allowed {
			if d.Rule == RuleAllowed || d.Rule == RuleInsecure {
				t.Fatalf("refusal with an allowing rule: %+v", d)
			}
			continue
		}
		if c.Kind == Unattested {
			if d.Rule != RuleInsecure {
				t.Fatalf("insecure allow with rule %s", d.Rule)
			}
			continue
		}
		if d.Rule != RuleAllowed {
			t.Fatalf("allow with rule %s: %+v", d.Rule, d)
		}
		if c.Kind != Node && c.Kind != User {
			t.Fatalf("unknown kind %d allowed: %+v", c.Kind, d)
		}
		if op != Read && op != Write {
			if op == Internal && c.Kind != Node {
				t.Fatalf("a user called internal: %+v", c)
			}
			// A node may call internal and proof (relaying an auditor; the
			// audit service checks residency), nothing else of its own.
			if c.Kind == Node && op != Internal && op != Proof {
				t.Fatalf("a node allowed %s: %+v", op, d)
			}
			continue
		}
		u := c
		if c.Kind == Node && ks != nil && !ks.ResidencyAnywhere && !slices.Contains(ks.ResidencyCountries, c.Country) {
			t.Fatalf("node in %q allowed %s on a keyspace resident in %v", c.Country, op, ks.ResidencyCountries)
		}
		if c.Kind == Node {
			if c.OnBehalfOf == nil || c.OnBehalfOf.Kind != User {
				t.Fatalf("a node allowed %s on its own: %+v", op, c)
			}
			u = *c.OnBehalfOf
		}
		if ks == nil {
			t.Fatalf("data op without a keyspace allowed")
		}
		if slices.Equal(u.Roles, []Role{RoleAuditor}) {
			t.Fatalf("an auditor allowed %s", op)
		}
		countries, anywhere := ks.callers()
		if ks.Personal && !anywhere && !slices.Contains(countries, u.Country) {
			t.Fatalf("caller from %q allowed %s on personal keyspace serving %v", u.Country, op, countries)
		}
		if ks.Personal && ks.Access.IsDefault() && !ks.ResidencyAnywhere && !slices.Contains(ks.ResidencyCountries, u.Country) {
			t.Fatalf("caller from %q allowed %s on personal keyspace resident in %v", u.Country, op, ks.ResidencyCountries)
		}
	}
}

func TestGuardrail(t *testing.T) {
	g := Guardrail{Name: "EEA", Countries: eea}
	personal := func(res []string, access Policy) Keyspace {
		return Keyspace{Name: "users", Personal: true, ResidencyCountries: res, Access: access}
	}
	for _, tc := range []struct {
		name        string
		g           Guardrail
		ks          Keyspace
		wasPersonal bool
		refused     string
	}{
		{"EEA personal keyspace", g, personal([]string{"IE", "NO"}, Policy{}), false, ""},
		{"residency anywhere", g, Keyspace{Name: "users", Personal: true, ResidencyAnywhere: true}, false, "cannot be anywhere"},
		{"residency with US", g, personal([]string{"IE", "US"}, Policy{}), true, "permit US"},
		{"callers anywhere", g, personal([]string{"IE"}, Policy{CallerAnywhere: true}), true, "callers of a personal keyspace cannot be anywhere"},
		{"callers in CN", g, personal([]string{"IE"}, Policy{CallerCountries: []string{"IE", "CN"}}), true, "callers in CN"},
		{"personal made public", g, Keyspace{Name: "users", ResidencyAnywhere: true}, true, "cannot be made public"},
		{"personal made public without a guardrail", Guardrail{}, Keyspace{Name: "users", ResidencyAnywhere: true}, true, "cannot be made public"},
		{"public anywhere", g, Keyspace{Name: "videos", ResidencyAnywhere: true, Access: Policy{CallerAnywhere: true}}, false, ""},
		{"no guardrail, personal anywhere", Guardrail{}, Keyspace{Name: "users", Personal: true, ResidencyAnywhere: true}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.g.Check(tc.ks, tc.wasPersonal)
			if tc.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrGuardrail) || !strings.Contains(err.Error(), tc.refused) || !strings.Contains(err.Error(), string(RuleGuardrail)) {
				t.Fatalf("Check = %v, want a guardrail refusal naming its rule and %q", err, tc.refused)
			}
		})
	}
}

// TestGuardrailProperties: whatever a keyspace asks for, a personal
// keyspace that passes the guardrail neither resides nor serves callers
// outside it.
func TestGuardrailProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(26, 2))
	g := Guardrail{Name: "IE+NO+DE", Countries: []string{"DE", "IE", "NO"}}
	for range 100000 {
		ks := randomKeyspace(rng)
		if ks == nil {
			continue
		}
		if g.Check(*ks, rng.IntN(2) == 0) != nil || !ks.Personal {
			continue
		}
		for _, c := range propCountries {
			u := user("u", c, RoleReader, RoleWriter)
			if Decide(u, Read, ks).Allowed && !slices.Contains(g.Countries, c) {
				t.Fatalf("guardrail passed %+v, and a caller from %q may read it", *ks, c)
			}
		}
		if ks.ResidencyAnywhere {
			t.Fatalf("guardrail passed a personal keyspace resident anywhere: %+v", *ks)
		}
		if c, bad := outside(ks.ResidencyCountries, g.Countries); bad {
			t.Fatalf("guardrail passed residency in %s", c)
		}
	}
}

// BenchmarkDecide is the gateway's decision for an allowed read of a
// personal keyspace, as every request in secure mode pays it.
func BenchmarkDecide(b *testing.B) {
	alice, ks := user("alice", "IE", RoleReader, RoleWriter), users()
	b.ReportAllocs()
	for b.Loop() {
		if !Decide(alice, Read, ks).Allowed {
			b.Fatal("refused")
		}
	}
}
