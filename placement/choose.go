package placement

import (
	"fmt"
	"sort"
	"strings"
)

// Node is one node as the planner sees it.
type Node struct {
	ID       string   // unique, non-empty
	Locality Locality // must be valid to be permitted
	Live     bool     // only live nodes receive replicas
	Replicas int      // replicas the node holds now (its load); >= 0
}

// ChooseReplicas picks n replicas (MinReplicas..MaxReplicas) for one shard
// among nodes, honouring p. It returns node IDs, best first. p is checked
// with ValidatePolicy first and its errors are returned as they are; n need
// not equal p.Replicas (a controller may grow or shrink a shard one step at
// a time).
//
// Only live nodes that p permits are candidates; nothing else is ever
// returned. Among candidates the choice spreads replicas as evenly as
// possible over regions (so the number of distinct regions is the largest
// possible), then over zones within a region, then prefers regions ranked in
// p.LeaderPreference, then the least loaded node, then the smallest node ID.
// A region is identified by country and region name, a zone by country,
// region and zone; nodes without a region share one region per country.
// The result depends only on the set of nodes and existing, not their order.
//
// existing lists node IDs that already hold a replica. Those that are
// candidates are kept and count toward n and the spread (when more than n
// are candidates, the best n of them are kept). Those that are unknown, dead
// or not permitted are not kept, so the result tells the caller which
// replica to replace.
//
// When fewer than n candidates exist it fails closed with an error wrapping
// ErrCannotPlace that says how many permitted live nodes exist, how many are
// needed and what the policy permits. Malformed input (n out of range, empty
// or duplicate IDs, negative load) wraps ErrInvalidInput.
func (c *Catalogue) ChooseReplicas(p Policy, nodes []Node, n int, existing []string) ([]string, error) {
	if err := c.ValidatePolicy(p); err != nil {
		return nil, err
	}
	if n < MinReplicas || n > MaxReplicas {
		return nil, fmt.Errorf("%w: replica count %d: want %d..%d", ErrInvalidInput, n, MinReplicas, MaxReplicas)
	}
	pl, err := c.newPlacer(p, nodes)
	if err != nil {
		return nil, err
	}
	kept, err := pl.existing(existing)
	if err != nil {
		return nil, err
	}
	if len(pl.cands) < n {
		return nil, pl.cannotPlace(p, n)
	}
	picks := pl.choose(make([]int, 0, n), n, kept)
	out := make([]string, len(picks))
	for i, k := range picks {
		out[i] = pl.cands[k].id
	}
	return out, nil
}

// ChooseForShards places p.Replicas replicas for each of shards new shards
// at once (a keyspace being created), as ChooseReplicas would one by one,
// adding each placed replica to its node's load so replicas spread evenly
// over the permitted nodes. In each returned list replica[0] is the intended
// initial leader: when p.LeaderPreference names a region holding one of the
// shard's replicas, it is a replica in the best-ranked such region;
// otherwise it is the replica that has led the fewest shards so far, so
// leaders spread evenly. The rest follow in choice order, rotated. Errors
// are those of ChooseReplicas; shards must be at least 1.
func (c *Catalogue) ChooseForShards(p Policy, nodes []Node, shards int) ([][]string, error) {
	if err := c.ValidatePolicy(p); err != nil {
		return nil, err
	}
	if shards < 1 {
		return nil, fmt.Errorf("%w: shard count %d: want at least 1", ErrInvalidInput, shards)
	}
	pl, err := c.newPlacer(p, nodes)
	if err != nil {
		return nil, err
	}
	n := p.Replicas
	if len(pl.cands) < n {
		return nil, pl.cannotPlace(p, n)
	}
	out := make([][]string, shards)
	flat := make([]string, shards*n)
	led := make([]int, len(pl.cands)) // shards each candidate leads so far
	picks := make([]int, 0, n)
	for s := range out {
		picks = pl.choose(picks[:0], n, nil)
		first := pl.leader(picks, led)
		led[picks[first]]++
		row := flat[s*n : (s+1)*n : (s+1)*n]
		for k := range row {
			row[k] = pl.cands[picks[(first+k)%n]].id
		}
		for _, k := range picks {
			pl.cands[k].load++
		}
		out[s] = row
	}
	return out, nil
}

// PreferredLeader returns, among replicas, the one to lead: the first live
// replica (in the order given) whose region is the best-ranked entry of
// p.LeaderPreference that has one; "" when p has no preference or no live
// replica lies in a preferred region. Replicas missing from nodes are
// skipped.
func PreferredLeader(p Policy, replicas []string, nodes []Node) string {
	if len(p.LeaderPreference) == 0 || len(replicas) == 0 {
		return ""
	}
	region := make(map[string]string, len(replicas))
	for _, id := range replicas {
		region[id] = ""
	}
	found := make(map[string]bool, len(replicas))
	for i := range nodes {
		nd := &nodes[i]
		if _, want := region[nd.ID]; want && !found[nd.ID] && nd.Live {
			region[nd.ID] = nd.Locality.Region
			found[nd.ID] = true
		}
	}
	for _, pref := range p.LeaderPreference {
		for _, id := range replicas {
			if found[id] && region[id] == pref {
				return id
			}
		}
	}
	return ""
}

// candidate is a live, permitted node with its spread coordinates.
type candidate struct {
	id     string
	region int // dense index of (country, region)
	zone   int // dense index of (country, region, zone)
	rank   int // position of its region in LeaderPreference, or len(LeaderPreference)
	load   int
}

// placer holds the candidates of one placement and the spread of the
// replicas chosen so far.
type placer struct {
	cands       []candidate // sorted by id
	byID        map[string]int
	where       map[string]spot // every permitted node, live or not
	regionCount []int           // chosen (or counted) replicas per region
	zoneCount   []int           // chosen (or counted) replicas per zone
	chosen      []bool
	prefs       int // len(LeaderPreference)
	down        int // permitted nodes that are not live
	outside     int // live nodes the policy does not permit
}

// spot is a permitted node's region and zone as dense indices.
type spot struct{ region, zone int }

// newPlacer checks nodes and keeps the live, permitted ones.
func (c *Catalogue) newPlacer(p Policy, nodes []Node) (*placer, error) {
	perm := c.resolve(p)
	rank := make(map[string]int, len(p.LeaderPreference))
	for i, r := range p.LeaderPreference {
		rank[r] = i
	}
	pl := &placer{byID: make(map[string]int, len(nodes)), where: make(map[string]spot, len(nodes)), prefs: len(p.LeaderPreference)}
	seen := make(map[string]bool, len(nodes))
	var permitted []*Node
	for i := range nodes {
		nd := &nodes[i]
		switch {
		case nd.ID == "":
			return nil, fmt.Errorf("%w: node %d has an empty ID", ErrInvalidInput, i)
		case seen[nd.ID]:
			return nil, fmt.Errorf("%w: node ID %q appears twice", ErrInvalidInput, clip(nd.ID))
		case nd.Replicas < 0:
			return nil, fmt.Errorf("%w: node %q has negative load %d", ErrInvalidInput, clip(nd.ID), nd.Replicas)
		}
		seen[nd.ID] = true
		ok := nd.Locality.Validate() == nil && perm.permits(nd.Locality.Country)
		if ok {
			permitted = append(permitted, nd)
		}
		switch {
		case ok && nd.Live:
			r, ok := rank[nd.Locality.Region]
			if !ok {
				r = pl.prefs
			}
			pl.cands = append(pl.cands, candidate{id: nd.ID, rank: r, load: nd.Replicas})
		case ok:
			pl.down++
		case nd.Live:
			pl.outside++
		}
	}
	sort.Slice(pl.cands, func(i, j int) bool { return pl.cands[i].id < pl.cands[j].id })

	// Spread coordinates of every permitted node, assigned in ID order, so
	// that replicas on permitted nodes that are not candidates can count
	// toward the spread too.
	sort.Slice(permitted, func(i, j int) bool { return permitted[i].ID < permitted[j].ID })
	regions := make(map[string]int)
	zones := make(map[string]int)
	for _, nd := range permitted {
		l := &nd.Locality
		pl.where[nd.ID] = spot{
			region: denseIndex(regions, l.Country+"\x00"+l.Region),
			zone:   denseIndex(zones, l.Country+"\x00"+l.Region+"\x00"+l.Zone),
		}
	}
	for k := range pl.cands {
		cd := &pl.cands[k]
		s := pl.where[cd.id]
		cd.region, cd.zone = s.region, s.zone
		pl.byID[cd.id] = k
	}
	pl.regionCount = make([]int, len(regions))
	pl.zoneCount = make([]int, len(zones))
	pl.chosen = make([]bool, len(pl.cands))
	return pl, nil
}

func denseIndex(m map[string]int, key string) int {
	i, ok := m[key]
	if !ok {
		i = len(m)
		m[key] = i
	}
	return i
}

// existing maps the IDs of current replicas to candidate indices, leaving out
// those that are not candidates.
func (pl *placer) existing(ids []string) ([]int, error) {
	var kept []int
	seen := make(map[string]bool, len(ids))
	for i, id := range ids {
		switch {
		case id == "":
			return nil, fmt.Errorf("%w: existing replica %d has an empty ID", ErrInvalidInput, i)
		case seen[id]:
			return nil, fmt.Errorf("%w: existing replica %q appears twice", ErrInvalidInput, clip(id))
		}
		seen[id] = true
		if k, ok := pl.byID[id]; ok {
			kept = append(kept, k)
		}
	}
	return kept, nil
}

// choose appends up to n picks to picks and returns it: first from kept,
// then from all candidates. The placer's spread is reset before it returns.
func (pl *placer) choose(picks []int, n int, kept []int) []int {
	if len(kept) > 0 {
		pool := make([]bool, len(pl.cands))
		for _, k := range kept {
			pool[k] = true
		}
		for len(picks) < n && len(picks) < len(kept) {
			picks = pl.take(picks, pl.best(pool))
		}
	}
	for len(picks) < n {
		k := pl.best(nil)
		if k < 0 {
			break
		}
		picks = pl.take(picks, k)
	}
	for _, k := range picks {
		pl.chosen[k] = false
		pl.regionCount[pl.cands[k].region]--
		pl.zoneCount[pl.cands[k].zone]--
	}
	return picks
}

// count adds d replicas on node id to the spread without choosing the node;
// it does nothing and reports false when id is not a permitted node.
func (pl *placer) count(id string, d int) bool {
	s, ok := pl.where[id]
	if ok {
		pl.regionCount[s.region] += d
		pl.zoneCount[s.zone] += d
	}
	return ok
}

func (pl *placer) take(picks []int, k int) []int {
	pl.chosen[k] = true
	pl.regionCount[pl.cands[k].region]++
	pl.zoneCount[pl.cands[k].zone]++
	return append(picks, k)
}

// best returns the best candidate not yet chosen (and in pool, when pool is
// not nil), or -1.
func (pl *placer) best(pool []bool) int {
	best := -1
	for k := range pl.cands {
		if pl.chosen[k] || (pool != nil && !pool[k]) {
			continue
		}
		if best < 0 || pl.better(k, best) {
			best = k
		}
	}
	return best
}

// better orders candidates: fewest replicas already in its region, then in
// its zone, then best leader-preference rank, then least load, then ID.
func (pl *placer) better(i, j int) bool {
	a, b := &pl.cands[i], &pl.cands[j]
	if x, y := pl.regionCount[a.region], pl.regionCount[b.region]; x != y {
		return x < y
	}
	if x, y := pl.zoneCount[a.zone], pl.zoneCount[b.zone]; x != y {
		return x < y
	}
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	if a.load != b.load {
		return a.load < b.load
	}
	return a.id < b.id
}

// leader returns the position in picks of the shard's intended leader: among
// the picks in the best-ranked preferred region (or all picks when none is
// preferred), the one that has led fewest shards, then the smallest ID.
func (pl *placer) leader(picks []int, led []int) int {
	rank := pl.prefs
	for _, k := range picks {
		rank = min(rank, pl.cands[k].rank)
	}
	best := -1
	for i, k := range picks {
		if pl.cands[k].rank != rank && rank < pl.prefs {
			continue
		}
		if best < 0 {
			best = i
			continue
		}
		b := picks[best]
		if led[k] < led[b] || (led[k] == led[b] && pl.cands[k].id < pl.cands[b].id) {
			best = i
		}
	}
	return best
}

// cannotPlace explains why a policy cannot be met.
func (pl *placer) cannotPlace(p Policy, n int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "need %d permitted live nodes, found %d (residency=%s", n, len(pl.cands), p.residency())
	if len(p.DenyCountries) > 0 {
		fmt.Fprintf(&b, " deny=%s", strings.Join(p.DenyCountries, ","))
	}
	b.WriteString(")")
	if pl.down > 0 {
		fmt.Fprintf(&b, "; %d permitted node(s) down", pl.down)
	}
	if pl.outside > 0 {
		fmt.Fprintf(&b, "; %d live node(s) outside the policy, never used", pl.outside)
	}
	return fmt.Errorf("%w: %s", ErrCannotPlace, b.String())
}
