package placement_test

import (
	"errors"
	"fmt"

	"github.com/clover-kv/clover/placement"
)

func Example() {
	cat := placement.DefaultCatalogue()
	allowJ, allowC, err := cat.ParseResidency("EEA")
	if err != nil {
		panic(err)
	}
	p := placement.Policy{AllowJurisdictions: allowJ, AllowCountries: allowC, Replicas: 3, Class: placement.ClassPersonal}
	if err := cat.ValidatePolicy(p); err != nil {
		panic(err)
	}

	var nodes []placement.Node
	for _, n := range []struct{ id, loc string }{
		{"ie-1", "country=IE,region=ie-dublin,zone=a"},
		{"ie-2", "country=IE,region=ie-dublin,zone=b"},
		{"no-1", "country=NO,region=no-hamar,zone=a"},
		{"us-1", "country=US,region=us-east,zone=a"},
	} {
		l, err := placement.ParseLocality(n.loc)
		if err != nil {
			panic(err)
		}
		nodes = append(nodes, placement.Node{ID: n.id, Locality: l, Live: true})
	}

	replicas, err := cat.ChooseReplicas(p, nodes, 3, nil)
	fmt.Println(p, replicas, err)

	// ie-2 fails: its replacement must stay in the EEA, and none is left.
	nodes[1].Live = false
	_, err = cat.ChooseReplicas(p, nodes, 3, []string{"ie-1", "no-1"})
	fmt.Println(errors.Is(err, placement.ErrCannotPlace))
	fmt.Println(err)
	// Output:
	// residency=EEA replicas=3 class=personal [ie-1 no-1 ie-2] <nil>
	// true
	// cannot place replicas: need 3 permitted live nodes, found 2 (residency=EEA); 1 permitted node(s) down; 1 live node(s) outside the policy, never used
}

func ExampleParseLocality() {
	l, err := placement.ParseLocality("zone=a, region=ie-dublin, country=ie")
	fmt.Println(l, err)
	name, _ := placement.CountryName(l.Country)
	fmt.Println(name, placement.DefaultCatalogue().JurisdictionsOf(l.Country))

	_, err = placement.ParseLocality("country=XX")
	fmt.Println(err, errors.Is(err, placement.ErrUnknownCountry))
	// Output:
	// country=IE,region=ie-dublin,zone=a <nil>
	// Ireland [EEA EU]
	// invalid locality: country "XX": unknown country code (want an ISO 3166-1 alpha-2 code such as IE) true
}

func ExampleCatalogue_ChooseForShards() {
	cat := placement.DefaultCatalogue()
	p := placement.Policy{AllowJurisdictions: []string{placement.EEA}, Replicas: 3,
		LeaderPreference: []string{"no-hamar"}, Class: placement.ClassPersonal}
	var nodes []placement.Node
	for _, n := range []struct{ id, country, region string }{
		{"de-1", "DE", "de-fra"}, {"ie-1", "IE", "ie-dublin"},
		{"no-1", "NO", "no-hamar"}, {"no-2", "NO", "no-hamar"},
	} {
		nodes = append(nodes, placement.Node{ID: n.id, Live: true,
			Locality: placement.Locality{Country: n.country, Region: n.region}})
	}
	shards, err := cat.ChooseForShards(p, nodes, 4)
	if err != nil {
		panic(err)
	}
	for _, replicas := range shards {
		fmt.Println(replicas, placement.PreferredLeader(p, replicas, nodes))
	}
	// Output:
	// [no-1 de-1 ie-1] no-1
	// [no-2 de-1 ie-1] no-2
	// [no-1 de-1 ie-1] no-1
	// [no-2 de-1 ie-1] no-2
}
