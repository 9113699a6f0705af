package client

import (
	"reflect"
	"testing"

	pb "github.com/clover-kv/clover/api/cloverv1"
)

// A policy's access fields reach the wire, and the cluster's answer comes
// back with the resolved callers; the resolved fields are the cluster's,
// never sent.
func TestPolicyAccessFieldsBothWays(t *testing.T) {
	p := Policy{AllowJurisdictions: []string{"EEA"}, Replicas: 3, Class: "personal",
		ReadRoles: []string{"reader", "admin"}, WriteRoles: []string{"writer"}, CallerJurisdictions: []string{"IE", "NO"},
		CallerCountries: []string{"XX"}, CallerAnywhere: true}
	w := policyToPB(p)
	if !reflect.DeepEqual(w.ReadRoles, p.ReadRoles) || !reflect.DeepEqual(w.WriteRoles, p.WriteRoles) ||
		!reflect.DeepEqual(w.CallerJurisdictions, p.CallerJurisdictions) {
		t.Errorf("policyToPB dropped access fields: %v", w)
	}
	if w.CallerCountries != nil || w.CallerAnywhere {
		t.Errorf("policyToPB sent the resolved callers: %v", w)
	}
	w.CallerCountries, w.CallerAnywhere = []string{"IE", "NO"}, false
	got := policyFromPB(w)
	want := p
	want.CallerCountries, want.CallerAnywhere = []string{"IE", "NO"}, false
	if !reflect.DeepEqual(got, want) {
		t.Errorf("policyFromPB:\n got %+v\nwant %+v", got, want)
	}
	if got := policyFromPB(&pb.Policy{CallerAnywhere: true}); !got.CallerAnywhere {
		t.Error("policyFromPB dropped caller_anywhere")
	}
}
