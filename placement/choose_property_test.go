package placement

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// refPolicy is a policy with its permitted countries written out by hand, so
// the property test does not trust the code under test to say what is allowed.
type refPolicy struct {
	p       Policy
	allowed map[string]bool // among the test's countries
}

var propCountries = []string{"IE", "NO", "DE", "US", "CH"}

func refPolicies() []refPolicy {
	set := func(cs ...string) map[string]bool {
		m := map[string]bool{}
		for _, c := range cs {
			m[c] = true
		}
		return m
	}
	return []refPolicy{
		{Policy{AllowJurisdictions: []string{EEA}}, set("IE", "NO", "DE")},
		{Policy{AllowJurisdictions: []string{EU}}, set("IE", "DE")},
		{Policy{AllowJurisdictions: []string{EEA}, DenyCountries: []string{"NO"}}, set("IE", "DE")},
		{Policy{}, set("IE", "NO", "DE", "US", "CH")},
		{Policy{DenyCountries: []string{"US"}}, set("IE", "NO", "DE", "CH")},
		{Policy{AllowCountries: []string{"CH"}}, set("CH")},
		{Policy{AllowJurisdictions: []string{EEA}, AllowCountries: []string{"CH"}, DenyCountries: []string{"DE"}}, set("IE", "NO", "CH")},
		{Policy{AllowCountries: []string{"US", "IE"}, LeaderPreference: []string{"r1", "r0"}}, set("US", "IE")},
	}
}

// randomCluster returns up to 8 nodes over the test's countries, two regions
// each (one of them sometimes unnamed) and two zones per region.
func randomCluster(rng *rand.Rand) []Node {
	ns := make([]Node, rng.IntN(9))
	for i := range ns {
		l := Locality{Country: propCountries[rng.IntN(len(propCountries))]}
		if r := rng.IntN(3); r > 0 {
			l.Region = fmt.Sprintf("r%d", r-1)
		}
		if rng.IntN(4) > 0 {
			l.Zone = fmt.Sprintf("z%d", rng.IntN(2))
		}
		ns[i] = Node{ID: fmt.Sprintf("n%d", i), Locality: l, Live: rng.IntN(5) > 0, Replicas: rng.IntN(4)}
	}
	return ns
}

// regionKey identifies a node's region the way the spread rule does.
func regionKey(l Locality) string { return l.Country + "/" + l.Region }

// spreadOf returns the number of distinct regions and the most replicas in
// one region.
func spreadOf(ns []Node, ids []string) (distinct, most int) {
	count := map[string]int{}
	for _, id := range ids {
		for _, n := range ns {
			if n.ID == id {
				count[regionKey(n.Locality)]++
			}
		}
	}
	for _, c := range count {
		most = max(most, c)
	}
	return len(count), most
}

// bestSpread enumerates every admissible replica set and returns the largest
// number of distinct regions and the smallest per-region maximum any of them
// achieves. Admissible: n distinct permitted live nodes that hold every kept
// existing replica, or, when more than n existing replicas are candidates,
// n of those.
func bestSpread(ns []Node, ok func(Node) bool, n int, existing []string) (distinct, most int, feasible bool) {
	var cands, kept []string
	for _, nd := range ns {
		if ok(nd) {
			cands = append(cands, nd.ID)
			if slices.Contains(existing, nd.ID) {
				kept = append(kept, nd.ID)
			}
		}
	}
	most = n + 1
	for mask := 0; mask < 1<<len(cands); mask++ {
		var set []string
		for i, id := range cands {
			if mask&(1<<i) != 0 {
				set = append(set, id)
			}
		}
		if len(set) != n {
			continue
		}
		if len(kept) <= n {
			if !containsAll(set, kept) {
				continue
			}
		} else if !containsAll(kept, set) {
			continue
		}
		feasible = true
		d, m := spreadOf(ns, set)
		distinct = max(distinct, d)
		most = min(most, m)
	}
	return distinct, most, feasible
}

func containsAll(set, sub []string) bool {
	for _, s := range sub {
		if !slices.Contains(set, s) {
			return false
		}
	}
	return true
}

func TestChooseReplicasProperties(t *testing.T) {
	c := DefaultCatalogue()
	policies := refPolicies()
	rng := rand.New(rand.NewPCG(1, 2024))
	placed, refused := 0, 0
	for iter := range 3000 {
		ns := randomCluster(rng)
		rp := policies[rng.IntN(len(policies))]
		p := rp.p
		p.Class = ClassPublic
		p.Replicas = 1 + rng.IntN(5)
		n := p.Replicas
		var existing []string
		for _, nd := range ns {
			if rng.IntN(3) == 0 {
				existing = append(existing, nd.ID)
			}
		}
		if rng.IntN(4) == 0 {
			existing = append(existing, "gone")
		}
		ok := func(nd Node) bool { return nd.Live && rp.allowed[nd.Locality.Country] }
		permittedLive := 0
		for _, nd := range ns {
			if ok(nd) {
				permittedLive++
			}
		}
		what := fmt.Sprintf("iteration %d: policy %v, n %d, existing %v, nodes %+v", iter, p, n, existing, ns)

		got, err := c.ChooseReplicas(p, ns, n, existing)
		if permittedLive < n {
			refused++
			if !errors.Is(err, ErrCannotPlace) || got != nil {
				t.Fatalf("%s: got %v, %v; want ErrCannotPlace (%d permitted live)", what, got, err, permittedLive)
			}
			if _, err := c.ChooseForShards(p, ns, 3); !errors.Is(err, ErrCannotPlace) {
				t.Fatalf("%s: ChooseForShards = %v, want ErrCannotPlace", what, err)
			}
			continue
		}
		placed++
		if err != nil {
			t.Fatalf("%s: %v (%d permitted live)", what, err, permittedLive)
		}
		if len(got) != n {
			t.Fatalf("%s: got %v, want %d replicas", what, got, n)
		}
		checkReplicas(t, what, ns, ok, got)

		wantDistinct, wantMost, feasible := bestSpread(ns, ok, n, existing)
		if !feasible {
			t.Fatalf("%s: reference found no admissible set", what)
		}
		if d, m := spreadOf(ns, got); d != wantDistinct || m != wantMost {
			t.Fatalf("%s: got %v with %d regions (at most %d in one), best is %d regions (at most %d in one)",
				what, got, d, m, wantDistinct, wantMost)
		}
		var kept []string
		for _, id := range existing {
			if i := slices.IndexFunc(ns, func(nd Node) bool { return nd.ID == id }); i >= 0 && ok(ns[i]) {
				kept = append(kept, id)
			}
		}
		if len(kept) <= n && !containsAll(got, kept) {
			t.Fatalf("%s: got %v, lost existing replicas %v", what, got, kept)
		}
		if len(kept) > n && !containsAll(kept, got) {
			t.Fatalf("%s: got %v, want a subset of existing %v", what, got, kept)
		}

		shards, err := c.ChooseForShards(p, ns, 4)
		if err != nil || len(shards) != 4 {
			t.Fatalf("%s: ChooseForShards = %v, %v", what, shards, err)
		}
		freshDistinct, freshMost, _ := bestSpread(ns, ok, n, nil)
		for _, row := range shards {
			if len(row) != n {
				t.Fatalf("%s: ChooseForShards row %v, want %d replicas", what, row, n)
			}
			checkReplicas(t, what, ns, ok, row)
			if d, m := spreadOf(ns, row); d != freshDistinct || m != freshMost {
				t.Fatalf("%s: ChooseForShards row %v has %d regions (at most %d in one), best is %d (%d)",
					what, row, d, m, freshDistinct, freshMost)
			}
			if pl := PreferredLeader(p, row, ns); pl != "" && pl != row[0] {
				t.Fatalf("%s: row %v leads with %s, preference says %s", what, row, row[0], pl)
			}
		}
	}
	if placed < 500 || refused < 500 {
		t.Fatalf("unbalanced cases: %d placed, %d refused", placed, refused)
	}
}

// checkReplicas fails if ids holds a duplicate or a node ok refuses.
func checkReplicas(t *testing.T, what string, ns []Node, ok func(Node) bool, ids []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, id := range ids {
		i := slices.IndexFunc(ns, func(nd Node) bool { return nd.ID == id })
		switch {
		case seen[id]:
			t.Fatalf("%s: %v holds %s twice", what, ids, id)
		case i < 0:
			t.Fatalf("%s: %v holds unknown node %s", what, ids, id)
		case !ok(ns[i]):
			t.Fatalf("%s: %v holds %s (%v, live %v), which is not allowed", what, ids, id, ns[i].Locality, ns[i].Live)
		}
		seen[id] = true
	}
}
