package placement

import (
	"fmt"
	"sort"
	"strings"
)

// planner is the state of one Plan call: the nodes, their loads as updated
// by the actions decided so far, the keyspaces' resolved policies and the
// room left under MaxMovesInFlight.
type planner struct {
	nodes map[string]*NodeState
	// load is the replicas (voters and non-voters) each node holds less
	// those on their way out: outside their policy, on dead or draining
	// nodes, or beyond the replica count once pending non-voters are
	// promoted (the ones rule 5 will remove). Every load comparison uses it,
	// so a move under way is neither repeated nor undone.
	load      map[string]int
	departing map[departure]bool
	leads     map[string]int // leaderships per node
	ks        map[string]*ksPlan
	max       int // MaxMovesInFlight
	inFlight  int // busy shards plus membership changes planned so far
	transfers int // leader transfers left for rules 7 and 8
	// quiet: no shard is Busy or has an action of rules 1 to 6 or a
	// replica move of rule 8; only then are leaderships balanced.
	quiet bool
}

// departure is a replica counted as on its way out.
type departure struct {
	shard uint64
	node  string
}

// ksPlan is one keyspace's policy resolved against the nodes.
type ksPlan struct {
	policy    Policy
	problem   string // non-empty: no usable policy; the keyspace's shards are blocked
	where     string // the policy's residency as text, for messages
	permitted map[string]bool
	rank      map[string]int // LeaderPreference region -> position
	pl        *placer        // candidates: nodes that may receive a new replica
	members   []string       // permitted, live, not draining: the balance population, sorted
	// For messages about a shortfall.
	permittedLive []string // sorted
	diskFull      int      // permitted live nodes with a full disk
	draining      int      // permitted live nodes that are draining
	unavailable   int      // permitted nodes down or dead
	outside       int      // live nodes the policy does not permit
}

func (c *Catalogue) newPlanner(s ClusterState, cfg PlanConfig) *planner {
	p := &planner{
		nodes:     make(map[string]*NodeState, len(s.Nodes)),
		load:      make(map[string]int, len(s.Nodes)),
		departing: make(map[departure]bool),
		leads:     make(map[string]int, len(s.Nodes)),
		ks:        make(map[string]*ksPlan),
		max:       cfg.maxMoves(),
		transfers: cfg.maxTransfers(),
		quiet:     true,
	}
	for i := range s.Nodes {
		p.nodes[s.Nodes[i].ID] = &s.Nodes[i]
	}
	for i := range s.Shards {
		sh := &s.Shards[i]
		if sh.Busy {
			p.inFlight++
		}
		for j, r := range sh.Replicas {
			if r.Node != "" && !listedBefore(sh.Replicas, j) {
				p.load[r.Node]++
			}
		}
		if sh.Leader != "" {
			p.leads[sh.Leader]++
		}
	}
	for i := range s.Shards {
		name := s.Shards[i].Keyspace
		if _, ok := p.ks[name]; !ok {
			p.ks[name] = c.newKsPlan(name, s.Policies, s.Nodes, p.load)
		}
	}
	p.countDepartures(s.Shards)
	return p
}

// countDepartures takes the replicas the rules will remove out of the
// loads: first those outside their policy, dead or draining, then, with
// those loads, the worst beyond each shard's replica count once its pending
// non-voters are voters.
func (p *planner) countDepartures(shards []ShardState) {
	evals := make([]*shardEval, len(shards))
	for i := range shards {
		e := &shardEval{sh: &shards[i], k: p.ks[shards[i].Keyspace]}
		if e.k.problem != "" || !p.readShard(e) {
			continue
		}
		evals[i] = e
		for j := range e.reps {
			if r := &e.reps[j]; !r.permitted || r.dead || r.draining {
				p.depart(e.sh.ID, r.id)
			}
		}
	}
	var surplus []departure
	for _, e := range evals {
		if e == nil {
			continue
		}
		var keep []*rep
		for j := range e.reps {
			if r := &e.reps[j]; r.permitted && !r.dead && !r.draining {
				keep = append(keep, r)
			}
		}
		extra := len(keep) - e.k.policy.Replicas
		if extra <= 0 {
			continue
		}
		region, zone := spreadCounts(keep)
		sort.Slice(keep, func(i, j int) bool { return p.worse(e, keep[i], keep[j], region, zone) })
		for _, r := range keep {
			if extra > 0 && !r.leader {
				surplus = append(surplus, departure{e.sh.ID, r.id})
				extra--
			}
		}
	}
	for _, d := range surplus {
		p.depart(d.shard, d.node)
	}
}

// depart counts the replica of shard on node as on its way out, once.
func (p *planner) depart(shard uint64, node string) {
	if d := (departure{shard, node}); !p.departing[d] {
		p.departing[d] = true
		p.addLoad(node, -1)
	}
}

// loadWith is node's load counting its replica of the shard as staying.
func (p *planner) loadWith(e *shardEval, node string) int {
	if p.departing[departure{e.sh.ID, node}] {
		return p.load[node] + 1
	}
	return p.load[node]
}

func (c *Catalogue) newKsPlan(name string, policies map[string]Policy, nodes []NodeState, load map[string]int) *ksPlan {
	pol, ok := policies[name]
	if !ok {
		return &ksPlan{problem: fmt.Sprintf("keyspace %q has no policy", clip(name))}
	}
	if err := c.ValidatePolicy(pol); err != nil {
		return &ksPlan{problem: fmt.Sprintf("policy of keyspace %q is invalid: %v", clip(name), err)}
	}
	k := &ksPlan{
		policy:    pol,
		where:     pol.where(),
		permitted: make(map[string]bool, len(nodes)),
		rank:      make(map[string]int, len(pol.LeaderPreference)),
	}
	for i, r := range pol.LeaderPreference {
		k.rank[r] = i
	}
	perm := c.resolve(pol)
	cands := make([]Node, len(nodes))
	for i := range nodes {
		n := &nodes[i]
		ok := n.Locality.Validate() == nil && perm.permits(n.Locality.Country)
		live := n.Live && !n.Dead
		k.permitted[n.ID] = ok
		switch {
		case ok && live:
			k.permittedLive = append(k.permittedLive, n.ID)
			if n.Draining {
				k.draining++
			} else {
				k.members = append(k.members, n.ID)
			}
			if n.DiskUsedFraction > DiskFullFraction {
				k.diskFull++
			}
		case ok:
			k.unavailable++
		case live:
			k.outside++
		}
		cands[i] = Node{ID: n.ID, Locality: n.Locality, Replicas: load[n.ID],
			Live: live && !n.Draining && n.DiskUsedFraction <= DiskFullFraction}
	}
	sort.Strings(k.permittedLive)
	sort.Strings(k.members)
	pl, err := c.newPlacer(pol, cands)
	if err != nil {
		return &ksPlan{problem: fmt.Sprintf("keyspace %q: %v", clip(name), err)}
	}
	k.pl = pl
	return k
}

// where is the policy's residency and deny list, e.g. "residency=EEA deny=NO".
func (p Policy) where() string {
	s := "residency=" + p.residency()
	if len(p.DenyCountries) > 0 {
		s += " deny=" + strings.Join(p.DenyCountries, ",")
	}
	return s
}

// rankOf is a region's position in LeaderPreference, or its length.
func (k *ksPlan) rankOf(region string) int {
	if r, ok := k.rank[region]; ok {
		return r
	}
	return len(k.policy.LeaderPreference)
}

// mean is the average of count over the keyspace's balance population.
func (k *ksPlan) mean(count map[string]int) float64 {
	if len(k.members) == 0 {
		return 0
	}
	total := 0
	for _, id := range k.members {
		total += count[id]
	}
	return float64(total) / float64(len(k.members))
}

// shortfall explains why no replica can be added.
func (k *ksPlan) shortfall() string {
	var b strings.Builder
	if n, want := len(k.permittedLive), k.policy.Replicas; n < want {
		fmt.Fprintf(&b, "only %d permitted live nodes (%s) under %s", n, idList(k.permittedLive), k.where)
	} else {
		fmt.Fprintf(&b, "no other permitted live node can take a replica (%d permitted live nodes: %s, under %s)", n, idList(k.permittedLive), k.where)
	}
	if k.diskFull > 0 {
		fmt.Fprintf(&b, "; %d with a full disk", k.diskFull)
	}
	if k.draining > 0 {
		fmt.Fprintf(&b, "; %d draining", k.draining)
	}
	if k.unavailable > 0 {
		fmt.Fprintf(&b, "; %s down or dead", count(k.unavailable, "permitted node"))
	}
	if k.outside > 0 {
		fmt.Fprintf(&b, "; %s outside the policy, never used", count(k.outside, "live node"))
	}
	return b.String()
}

// idList joins up to six IDs, then says how many more there are.
func idList(ids []string) string {
	const show = 6
	if len(ids) == 0 {
		return "none"
	}
	if len(ids) <= show {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ids[:show], ", "), len(ids)-show)
}

// addLoad records a replica added (d = 1) or removed (d = -1) on node id.
func (p *planner) addLoad(id string, d int) {
	p.load[id] += d
	for _, k := range p.ks {
		if k.pl == nil {
			continue
		}
		if i, ok := k.pl.byID[id]; ok {
			k.pl.cands[i].load += d
		}
	}
}

// listedBefore reports whether rs[j] names a node an earlier entry names.
func listedBefore(rs []ReplicaState, j int) bool {
	for i := range j {
		if rs[i].Node == rs[j].Node {
			return true
		}
	}
	return false
}
