package placement

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// nd builds a live node from "id@country/region/zone" with the given load; a
// trailing "!" marks it dead.
func nd(spec string, load int) Node {
	live := !strings.HasSuffix(spec, "!")
	spec = strings.TrimSuffix(spec, "!")
	id, where, _ := strings.Cut(spec, "@")
	parts := strings.Split(where, "/")
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	return Node{ID: id, Locality: Locality{Country: parts[0], Region: parts[1], Zone: parts[2]}, Live: live, Replicas: load}
}

func nodes(specs ...string) []Node {
	out := make([]Node, len(specs))
	for i, s := range specs {
		out[i] = nd(s, 0)
	}
	return out
}

func eeaPolicy(replicas int) Policy {
	return Policy{AllowJurisdictions: []string{EEA}, Replicas: replicas, Class: ClassPersonal}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestChooseReplicas(t *testing.T) {
	c := DefaultCatalogue()
	spec := nodes("ie-a@IE/ie-dublin/a", "ie-b@IE/ie-dublin/b", "no-a@NO/no-hamar/a", "us-a@US/us-east/a")
	fiveEEA := nodes("ie-a@IE/ie-dublin/a", "ie-b@IE/ie-dublin/b", "no-a@NO/no-hamar/a", "no-b@NO/no-hamar/b", "de-a@DE/de-fra/a", "us-a@US/us-east/a")
	loaded := func(ns []Node, loads map[string]int) []Node {
		ns = slices.Clone(ns)
		for i := range ns {
			ns[i].Replicas = loads[ns[i].ID]
		}
		return ns
	}

	tests := []struct {
		name     string
		p        Policy
		nodes    []Node
		n        int
		existing []string
		want     []string // exact order
		wantSet  []string // any order
	}{
		{name: "EEA takes the three EEA nodes, never US", p: eeaPolicy(3), nodes: spec, n: 3,
			want: []string{"ie-a", "no-a", "ie-b"}},
		{name: "anywhere spreads over three regions", p: Policy{Replicas: 3, Class: ClassPublic}, nodes: spec, n: 3,
			wantSet: []string{"ie-a", "no-a", "us-a"}},
		{name: "three regions out of five EEA nodes", p: eeaPolicy(3), nodes: fiveEEA, n: 3,
			wantSet: []string{"de-a", "ie-a", "no-a"}},
		{name: "zones before load", p: eeaPolicy(2),
			nodes: loaded(nodes("a1@IE/ie-dublin/a", "a2@IE/ie-dublin/a", "b1@IE/ie-dublin/b"), map[string]int{"b1": 50}), n: 2,
			wantSet: []string{"a1", "b1"}},
		{name: "regions before zones", p: eeaPolicy(2),
			nodes: nodes("a@IE/ie-dublin/a", "b@IE/ie-dublin/b", "c@IE/ie-cork/a"), n: 2,
			wantSet: []string{"a", "c"}},
		{name: "least loaded within a zone", p: eeaPolicy(1),
			nodes: loaded(nodes("a@IE/ie-dublin/a", "b@IE/ie-dublin/a", "c@IE/ie-dublin/a"), map[string]int{"a": 5, "b": 2, "c": 3}), n: 1,
			want: []string{"b"}},
		{name: "ties go to the smallest ID", p: eeaPolicy(2),
			nodes: nodes("n3@IE/ie-dublin/a", "n1@IE/ie-dublin/a", "n2@IE/ie-dublin/a"), n: 2,
			want: []string{"n1", "n2"}},
		{name: "dead nodes excluded", p: eeaPolicy(3),
			nodes: nodes("ie-a@IE/ie-dublin/a!", "ie-b@IE/ie-dublin/b", "no-a@NO/no-hamar/a", "no-b@NO/no-hamar/b", "us-a@US/us-east/a"), n: 3,
			wantSet: []string{"ie-b", "no-a", "no-b"}},
		{name: "deny wins over allow", p: Policy{AllowJurisdictions: []string{EEA}, DenyCountries: []string{"NO"}, Replicas: 2, Class: ClassPersonal},
			nodes: fiveEEA, n: 2, wantSet: []string{"de-a", "ie-a"}},
		{name: "allowed country outside the jurisdiction", p: Policy{AllowJurisdictions: []string{EU}, AllowCountries: []string{"CH"}, Replicas: 3, Class: ClassPersonal},
			nodes: nodes("ie-a@IE/ie-dublin/a", "no-a@NO/no-hamar/a", "ch-a@CH/ch-zurich/a", "us-a@US/us-east/a", "ie-b@IE/ie-dublin/b"), n: 3,
			wantSet: []string{"ch-a", "ie-a", "ie-b"}},
		{name: "invalid locality is not permitted", p: Policy{Replicas: 1, Class: ClassPublic},
			nodes: []Node{{ID: "bad", Locality: Locality{Country: "ie"}, Live: true}, {ID: "good", Locality: Locality{Country: "IE"}, Live: true, Replicas: 9}}, n: 1,
			want: []string{"good"}},
		{name: "five replicas over three regions: two, two, one", p: eeaPolicy(5),
			nodes: nodes("i1@IE/ie-dublin/a", "i2@IE/ie-dublin/b", "i3@IE/ie-dublin/c",
				"n1@NO/no-hamar/a", "n2@NO/no-hamar/b", "n3@NO/no-hamar/c", "d1@DE/de-fra/a"), n: 5,
			wantSet: []string{"d1", "i1", "i2", "n1", "n2"}},
		{name: "leader preference breaks region ties", p: Policy{AllowJurisdictions: []string{EEA}, Replicas: 2, LeaderPreference: []string{"de-fra"}, Class: ClassPersonal},
			nodes: loaded(fiveEEA, map[string]int{"de-a": 100}), n: 2,
			want: []string{"de-a", "ie-a"}},
		{name: "existing replicas kept", p: eeaPolicy(3),
			nodes: loaded(fiveEEA, map[string]int{"ie-b": 100}), n: 3, existing: []string{"ie-b"},
			wantSet: []string{"de-a", "ie-b", "no-a"}},
		{name: "existing count toward spread", p: eeaPolicy(3),
			nodes: fiveEEA, n: 3, existing: []string{"no-b", "ie-b"},
			want: []string{"ie-b", "no-b", "de-a"}},
		{name: "existing outside the policy is replaced", p: eeaPolicy(3),
			nodes: fiveEEA, n: 3, existing: []string{"ie-a", "us-a", "no-a"},
			wantSet: []string{"de-a", "ie-a", "no-a"}},
		{name: "existing dead or unknown is replaced", p: eeaPolicy(3),
			nodes: nodes("ie-a@IE/ie-dublin/a", "no-a@NO/no-hamar/a!", "no-b@NO/no-hamar/b", "de-a@DE/de-fra/a"), n: 3, existing: []string{"ie-a", "no-a", "gone"},
			wantSet: []string{"de-a", "ie-a", "no-b"}},
		{name: "more existing than needed keeps the best spread", p: eeaPolicy(3),
			nodes: fiveEEA, n: 3, existing: []string{"ie-a", "ie-b", "no-a", "no-b"},
			wantSet: []string{"ie-a", "ie-b", "no-a"}},
	}
	for _, tt := range tests {
		got, err := c.ChooseReplicas(tt.p, tt.nodes, tt.n, tt.existing)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if tt.want != nil && !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
		if tt.wantSet != nil && !slices.Equal(sorted(got), tt.wantSet) {
			t.Errorf("%s: got %v, want %v in any order", tt.name, got, tt.wantSet)
		}
		checkPlacement(t, c, tt.p, tt.nodes, got)
	}
}

// checkPlacement fails the test if replicas holds a duplicate, dead or
// non-permitted node.
func checkPlacement(t *testing.T, c *Catalogue, p Policy, ns []Node, replicas []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, id := range replicas {
		if seen[id] {
			t.Fatalf("replicas %v hold %q twice", replicas, id)
		}
		seen[id] = true
		i := slices.IndexFunc(ns, func(n Node) bool { return n.ID == id })
		if i < 0 {
			t.Fatalf("replicas %v hold unknown node %q", replicas, id)
		}
		if !ns[i].Live || !c.Permits(p, ns[i].Locality) {
			t.Fatalf("replicas %v hold %q (%v, live %v), which %v does not allow", replicas, id, ns[i].Locality, ns[i].Live, p)
		}
	}
}

func TestChooseReplicasCannotPlace(t *testing.T) {
	c := DefaultCatalogue()
	tests := []struct {
		name    string
		p       Policy
		nodes   []Node
		n       int
		mention []string
	}{
		{name: "two EEA nodes, three replicas, US node idle", p: eeaPolicy(3),
			nodes: nodes("ie-a@IE/ie-dublin/a", "no-a@NO/no-hamar/a", "us-a@US/us-east/a", "us-b@US/us-east/b"), n: 3,
			mention: []string{"need 3", "found 2", "residency=EEA", "2 live node(s) outside the policy"}},
		{name: "a dead node does not count", p: eeaPolicy(3),
			nodes: nodes("ie-a@IE/ie-dublin/a", "no-a@NO/no-hamar/a", "no-b@NO/no-hamar/b!"), n: 3,
			mention: []string{"found 2", "1 permitted node(s) down"}},
		{name: "deny empties the cluster", p: Policy{AllowJurisdictions: []string{EEA}, DenyCountries: []string{"NO"}, Replicas: 1, Class: ClassPersonal},
			nodes: nodes("no-a@NO/no-hamar/a"), n: 1, mention: []string{"found 0", "deny=NO"}},
		{name: "no nodes at all", p: eeaPolicy(1), nodes: nil, n: 1, mention: []string{"found 0"}},
		{name: "existing do not add capacity", p: eeaPolicy(3),
			nodes: nodes("ie-a@IE/ie-dublin/a", "no-a@NO/no-hamar/a", "us-a@US/us-east/a"), n: 3,
			mention: []string{"found 2"}},
	}
	for _, tt := range tests {
		got, err := c.ChooseReplicas(tt.p, tt.nodes, tt.n, []string{"us-a"})
		if !errors.Is(err, ErrCannotPlace) {
			t.Errorf("%s: got %v, %v; want ErrCannotPlace", tt.name, got, err)
			continue
		}
		if got != nil {
			t.Errorf("%s: returned %v with its error", tt.name, got)
		}
		for _, m := range tt.mention {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%s: error %q does not mention %q", tt.name, err, m)
			}
		}
		if _, err := c.ChooseForShards(tt.p, tt.nodes, 4); !errors.Is(err, ErrCannotPlace) && tt.p.Replicas == tt.n {
			t.Errorf("%s: ChooseForShards = %v, want ErrCannotPlace", tt.name, err)
		}
	}
}

func TestChooseReplicasInvalidInput(t *testing.T) {
	c := DefaultCatalogue()
	ok := nodes("a@IE/ie-dublin/a", "b@NO/no-hamar/a", "c@DE/de-fra/a")
	tests := []struct {
		name     string
		p        Policy
		nodes    []Node
		n        int
		existing []string
		wantErr  error
	}{
		{"zero replicas", eeaPolicy(3), ok, 0, nil, ErrInvalidInput},
		{"eight replicas", eeaPolicy(3), ok, 8, nil, ErrInvalidInput},
		{"invalid policy", Policy{AllowJurisdictions: []string{"MARS"}, Replicas: 3, Class: ClassPublic}, ok, 3, nil, ErrUnknownJurisdiction},
		{"empty node ID", eeaPolicy(3), append(slices.Clone(ok), Node{Locality: Locality{Country: "IE"}, Live: true}), 3, nil, ErrInvalidInput},
		{"duplicate node ID", eeaPolicy(3), append(slices.Clone(ok), nd("a@FR/fr-paris/a", 0)), 3, nil, ErrInvalidInput},
		{"negative load", eeaPolicy(3), append(slices.Clone(ok), nd("d@FR/fr-paris/a", -1)), 3, nil, ErrInvalidInput},
		{"duplicate existing", eeaPolicy(3), ok, 3, []string{"a", "a"}, ErrInvalidInput},
		{"empty existing", eeaPolicy(3), ok, 3, []string{""}, ErrInvalidInput},
	}
	for _, tt := range tests {
		got, err := c.ChooseReplicas(tt.p, tt.nodes, tt.n, tt.existing)
		if !errors.Is(err, tt.wantErr) || got != nil {
			t.Errorf("%s: got %v, %v; want %v", tt.name, got, err, tt.wantErr)
		}
	}
	if _, err := c.ChooseForShards(eeaPolicy(3), ok, 0); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("zero shards: %v", err)
	}
	if _, err := c.ChooseForShards(Policy{Replicas: 3}, ok, 1); !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("policy without class: %v", err)
	}
}

func TestChooseReplicasDeterministic(t *testing.T) {
	c := DefaultCatalogue()
	var ns []Node
	for i, r := range []string{"IE/ie-dublin/a", "IE/ie-dublin/b", "IE/ie-cork/a", "NO/no-hamar/a", "NO/no-hamar/b", "DE/de-fra/a", "US/us-east/a", "IE//"} {
		for j := range 3 {
			ns = append(ns, nd(fmt.Sprintf("n%d-%d@%s", i, j, r), (i*7+j*3)%4))
		}
	}
	ns[4].Live = false
	p := Policy{AllowJurisdictions: []string{EEA}, Replicas: 5, LeaderPreference: []string{"no-hamar"}, Class: ClassPersonal}
	existing := []string{"n0-0", "n0-1", "n6-0"}
	want, err := c.ChooseReplicas(p, ns, 5, existing)
	if err != nil {
		t.Fatal(err)
	}
	wantShards, err := c.ChooseForShards(p, ns, 20)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for range 50 {
		shuffled := slices.Clone(ns)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		ex := slices.Clone(existing)
		rng.Shuffle(len(ex), func(i, j int) { ex[i], ex[j] = ex[j], ex[i] })
		got, err := c.ChooseReplicas(p, shuffled, 5, ex)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("shuffled input gave %v, %v; want %v", got, err, want)
		}
		gotShards, err := c.ChooseForShards(p, shuffled, 20)
		if err != nil || !slices.EqualFunc(gotShards, wantShards, slices.Equal) {
			t.Fatalf("shuffled input gave shards %v, %v; want %v", gotShards, err, wantShards)
		}
	}
	// The input is not modified.
	if ns[0].Replicas != 0 || ns[1].Replicas != 3 {
		t.Fatal("ChooseForShards modified the nodes")
	}
}

func TestChooseForShardsBalance(t *testing.T) {
	c := DefaultCatalogue()
	var ns []Node
	for _, r := range []string{"IE/ie-dublin", "NO/no-hamar", "DE/de-fra"} {
		for j := range 10 {
			ns = append(ns, nd(fmt.Sprintf("%s-%d@%s/%c", r[3:], j, r, 'a'+j%3), 0))
		}
	}
	ns = append(ns, nd("us-0@US/us-east/a", 0))
	const shards = 300
	p := eeaPolicy(3)
	got, err := c.ChooseForShards(p, ns, shards)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != shards {
		t.Fatalf("%d shards placed, want %d", len(got), shards)
	}
	load, leads := map[string]int{}, map[string]int{}
	region := map[string]string{}
	for _, n := range ns {
		region[n.ID] = n.Locality.Region
	}
	for s, row := range got {
		if len(row) != 3 {
			t.Fatalf("shard %d: %v", s, row)
		}
		checkPlacement(t, c, p, ns, row)
		regions := map[string]bool{}
		for _, id := range row {
			load[id]++
			regions[region[id]] = true
		}
		if len(regions) != 3 {
			t.Errorf("shard %d: %v spans %d regions, want 3", s, row, len(regions))
		}
		leads[row[0]]++
	}
	if spread(load, 30) > 1 {
		t.Errorf("replica load uneven: %v", load)
	}
	if spread(leads, 30) > 1 {
		t.Errorf("leaders uneven: %v", leads)
	}
	if load["us-0"] != 0 {
		t.Error("US node used")
	}

	// Existing load steers new replicas away.
	heavy := slices.Clone(ns)
	heavy[0].Replicas = 1000
	got, err = c.ChooseForShards(p, heavy, 30)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range got {
		if slices.Contains(row, heavy[0].ID) {
			t.Fatalf("loaded node %s chosen: %v", heavy[0].ID, row)
		}
	}
}

// spread is the difference between the largest and smallest count over n
// keys, missing keys counting zero.
func spread(m map[string]int, n int) int {
	v := slices.Collect(maps.Values(m))
	for len(v) < n {
		v = append(v, 0)
	}
	return slices.Max(v) - slices.Min(v)
}

func TestChooseForShardsLeaderPreference(t *testing.T) {
	c := DefaultCatalogue()
	ns := nodes("ie-a@IE/ie-dublin/a", "ie-b@IE/ie-dublin/b", "no-a@NO/no-hamar/a", "no-b@NO/no-hamar/b",
		"de-a@DE/de-fra/a", "de-b@DE/de-fra/b", "fr-a@FR/fr-paris/a")
	p := Policy{AllowJurisdictions: []string{EEA}, Replicas: 3, LeaderPreference: []string{"no-hamar", "ie-dublin"}, Class: ClassPersonal}
	got, err := c.ChooseForShards(p, ns, 40)
	if err != nil {
		t.Fatal(err)
	}
	leads := map[string]int{}
	for s, row := range got {
		checkPlacement(t, c, p, ns, row)
		if !strings.HasPrefix(row[0], "no-") {
			t.Errorf("shard %d: leader %s is not in no-hamar: %v", s, row[0], row)
		}
		if pl := PreferredLeader(p, row, ns); pl != row[0] {
			t.Errorf("shard %d: PreferredLeader = %q, want replica[0] %q", s, pl, row[0])
		}
		leads[row[0]]++
	}
	if leads["no-a"] != 20 || leads["no-b"] != 20 {
		t.Errorf("leaders within no-hamar uneven: %v", leads)
	}

	// With no-hamar down the second choice leads.
	ns[2].Live, ns[3].Live = false, false
	got, err = c.ChooseForShards(p, ns, 10)
	if err != nil {
		t.Fatal(err)
	}
	for s, row := range got {
		if !strings.HasPrefix(row[0], "ie-") {
			t.Errorf("shard %d: leader %s is not in ie-dublin: %v", s, row[0], row)
		}
	}
}

func TestPreferredLeader(t *testing.T) {
	ns := nodes("ie-a@IE/ie-dublin/a", "ie-b@IE/ie-dublin/b", "no-a@NO/no-hamar/a", "no-b@NO/no-hamar/b!", "de-a@DE/de-fra/a")
	pref := func(regions ...string) Policy {
		return Policy{AllowJurisdictions: []string{EEA}, Replicas: 3, LeaderPreference: regions, Class: ClassPersonal}
	}
	tests := []struct {
		name     string
		p        Policy
		replicas []string
		want     string
	}{
		{"no preference", pref(), []string{"ie-a", "no-a", "de-a"}, ""},
		{"first ranked region", pref("no-hamar", "ie-dublin"), []string{"ie-a", "de-a", "no-a"}, "no-a"},
		{"first replica in the region", pref("ie-dublin"), []string{"de-a", "ie-b", "ie-a"}, "ie-b"},
		{"second ranked when first absent", pref("us-east", "de-fra"), []string{"ie-a", "de-a"}, "de-a"},
		{"dead replica skipped", pref("no-hamar", "de-fra"), []string{"no-b", "de-a"}, "de-a"},
		{"unknown replica skipped", pref("no-hamar"), []string{"ghost", "ie-a"}, ""},
		{"no replica in a preferred region", pref("fr-paris"), []string{"ie-a", "no-a"}, ""},
		{"no replicas", pref("ie-dublin"), nil, ""},
	}
	for _, tt := range tests {
		if got := PreferredLeader(tt.p, tt.replicas, ns); got != tt.want {
			t.Errorf("%s: PreferredLeader = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func BenchmarkChooseForShards(b *testing.B) {
	c := DefaultCatalogue()
	var ns []Node
	for i, r := range []string{"IE/ie-dublin", "NO/no-hamar", "DE/de-fra"} {
		for j := range 10 {
			ns = append(ns, nd(fmt.Sprintf("n%02d@%s/%c", i*10+j, r, 'a'+j%3), j))
		}
	}
	p := Policy{AllowJurisdictions: []string{EEA}, Replicas: 3, Class: ClassPersonal}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.ChooseForShards(p, ns, 10000); err != nil {
			b.Fatal(err)
		}
	}
}
