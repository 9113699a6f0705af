package server

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/clover-kv/clover/access"
	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/placement"
)

// A keyspace record becomes the access.Keyspace the gateway decides with:
// class, resolved residency and resolved access policy, and a caller
// outside a personal keyspace's residency is refused by Decide.
func TestAccessKeyspaceFromRecord(t *testing.T) {
	cat := placement.DefaultCatalogue()
	eea := placement.Policy{AllowJurisdictions: []string{"EEA"}, Replicas: 3, Class: placement.ClassPersonal}
	acc, err := resolveAccess(cat, &pb.Policy{ReadRoles: []string{"reader", "admin"}, CallerJurisdictions: []string{"IE", "NO"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &keyspaceRecord{Name: "users", Policy: eea, Access: acc}
	rec.Countries, rec.Anywhere = cat.PermittedCountries(eea)
	got := rec.accessKeyspace()
	want := access.Keyspace{Name: "users", Personal: true, ResidencyCountries: rec.Countries,
		Access: access.Policy{ReadRoles: []access.Role{access.RoleReader, access.RoleAdmin}, CallerCountries: []string{"IE", "NO"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("accessKeyspace:\n got %+v\nwant %+v", got, want)
	}
	fr := access.Caller{Kind: access.User, Name: "ana", Roles: []access.Role{access.RoleReader}, Country: "FR"}
	if d := access.Decide(fr, access.Read, &got); d.Allowed || d.Rule != access.RuleCallerJurisdiction {
		t.Errorf("reader in FR, callers IE,NO: %+v, want refused by %s", d, access.RuleCallerJurisdiction)
	}
	fr.Country = "NO"
	if d := access.Decide(fr, access.Read, &got); !d.Allowed {
		t.Errorf("reader in NO, callers IE,NO: %+v, want allowed", d)
	}

	// The default policy of a public keyspace anywhere: callers anywhere.
	pub := &keyspaceRecord{Name: "videos", Policy: placement.Policy{Replicas: 1, Class: placement.ClassPublic}}
	pub.Countries, pub.Anywhere = cat.PermittedCountries(pub.Policy)
	got = pub.accessKeyspace()
	if got.Personal || !got.ResidencyAnywhere || !got.Access.IsDefault() {
		t.Errorf("public keyspace: %+v", got)
	}
	if countries, anywhere := pub.effectiveCallers(); countries != nil || !anywhere {
		t.Errorf("public default callers %v %v, want anywhere", countries, anywhere)
	}
	// A record without a class (fail closed) is personal, and its default
	// callers are its residency.
	bare := &keyspaceRecord{Name: "old", Countries: []string{"IE"}}
	if !bare.accessKeyspace().Personal {
		t.Error("a record without a class is not personal")
	}
	if countries, anywhere := bare.effectiveCallers(); !slices.Equal(countries, []string{"IE"}) || anywhere {
		t.Errorf("personal default callers %v %v, want the residency", countries, anywhere)
	}
}

// Bad roles and caller jurisdictions are InvalidArgument naming the field
// and element; good ones resolve.
func TestResolveAccess(t *testing.T) {
	cat, err := placement.DefaultCatalogue().With("NORDICS", []string{"DK", "FI", "IS", "NO", "SE"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    *pb.Policy
		want string // substring of the error; "" for none
	}{
		{"default", &pb.Policy{}, ""},
		{"roles", &pb.Policy{ReadRoles: []string{"reader", "admin"}, WriteRoles: []string{"writer"}}, ""},
		{"auditor reads", &pb.Policy{ReadRoles: []string{"reader", "auditor"}}, `read_roles[1] "auditor": an auditor never reads`},
		{"auditor writes", &pb.Policy{WriteRoles: []string{"auditor"}}, `write_roles[0] "auditor"`},
		{"unknown role", &pb.Policy{ReadRoles: []string{"owner"}}, `read_roles[0] "owner": unknown role (want reader, writer or admin)`},
		{"upper-case role", &pb.Policy{WriteRoles: []string{"Writer"}}, `write_roles[0] "Writer": unknown role`},
		{"role twice", &pb.Policy{WriteRoles: []string{"writer", "writer"}}, `write_roles[1] "writer": listed twice`},
		{"unknown jurisdiction", &pb.Policy{CallerJurisdictions: []string{"EEA", "XX"}}, `caller_jurisdictions[1] "XX": unknown jurisdiction (known jurisdictions: EEA, EU, NORDICS`},
		{"lower-case country", &pb.Policy{CallerJurisdictions: []string{"ie"}}, `caller_jurisdictions[0] "ie"`},
		{"ANY combined", &pb.Policy{CallerJurisdictions: []string{"EEA", "ANY"}}, `caller_jurisdictions[1] "ANY": ANY cannot be combined`},
		{"twice", &pb.Policy{CallerJurisdictions: []string{"IE", "IE"}}, `caller_jurisdictions[1] "IE": listed twice`},
	} {
		_, err := resolveAccess(cat, tc.p)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want ErrInvalid containing %q", tc.name, err, tc.want)
		}
	}
	acc, err := resolveAccess(cat, &pb.Policy{CallerJurisdictions: []string{"NORDICS", "IE"}})
	if err != nil || !slices.Equal(acc.CallerCountries, []string{"DK", "FI", "IE", "IS", "NO", "SE"}) || acc.CallerAnywhere ||
		!slices.Equal(acc.CallerJurisdictions, []string{"NORDICS", "IE"}) {
		t.Errorf("NORDICS,IE: %+v %v", acc, err)
	}
	acc, err = resolveAccess(cat, &pb.Policy{CallerJurisdictions: []string{"ANY"}})
	if err != nil || !acc.CallerAnywhere || acc.CallerCountries != nil {
		t.Errorf("ANY: %+v %v", acc, err)
	}
}
