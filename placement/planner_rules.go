package placement

import (
	"fmt"
	"sort"
)

// rep is one replica of the shard being planned, with what Plan knows of
// its node.
type rep struct {
	id        string
	voter     bool
	caughtUp  bool
	known     bool // the node is in ClusterState.Nodes
	loc       Locality
	permitted bool
	live      bool // Live and not Dead
	dead      bool // Dead, or a node Plan does not know, or Damaged
	damaged   bool
	draining  bool
	leader    bool
	rank      int // position of its region in LeaderPreference
}

// desc names the replica's node and country, e.g. "us-1 (US)".
func (r *rep) desc() string {
	if !r.known {
		return r.id + " (unknown node)"
	}
	return r.id + " (" + r.loc.Country + ")"
}

// shardEval is what the rules found for one shard.
type shardEval struct {
	sh       *ShardState
	k        *ksPlan
	reps     []rep // sorted by node ID
	leader   *rep
	voters   int
	live     int // live voters
	problems []string

	main     *Action // the first rule's action
	mainRule int
	balance  bool    // main is a balance move: nothing to report if it waits
	frees    string  // node whose replica main makes surplus (rules 6 and 8)
	lead     *Action // a TransferLeader from rules 7-8, for when main is nil or waits

	blocked, under, waiting bool // status when nothing is planned
}

func (e *shardEval) problem(format string, args ...any) {
	e.problems = append(e.problems, fmt.Sprintf(format, args...))
}

func (e *shardEval) block(format string, args ...any) {
	e.problem(format, args...)
	e.blocked = true
}

func (e *shardEval) act(rule int, kind ActionKind, node, format string, args ...any) {
	e.main = &Action{Kind: kind, Shard: e.sh.ID, Keyspace: e.sh.Keyspace, Node: node, Reason: fmt.Sprintf(format, args...)}
	e.mainRule = rule
}

// urgency orders shards for the in-flight bound: the rule of the main
// action, then shards with only a leader transfer, then the rest.
func (e *shardEval) urgency() int {
	switch {
	case e.main != nil:
		return e.mainRule
	case e.lead != nil:
		return 9
	}
	return 10
}

func quorum(voters int) int { return voters/2 + 1 }

// canRemove reports whether removing r keeps a quorum of live voters among
// the remaining voters.
func (e *shardEval) canRemove(r *rep) bool {
	if !r.voter {
		return true
	}
	n, l := e.voters-1, e.live
	if r.live {
		l--
	}
	return n >= 1 && l >= quorum(n)
}

// rules are rules 1 to 6 and the replica part of rule 8, in priority order;
// each reports whether it chose the shard's action.
var rules = []func(*planner, *shardEval) bool{
	(*planner).leaderResidency, (*planner).promote, (*planner).addMissing, (*planner).removeOutside,
	(*planner).removeWorst, (*planner).improveSpread, (*planner).balanceReplicas,
}

// evaluate applies the rules to one shard without changing the planner.
func (p *planner) evaluate(sh *ShardState) *shardEval {
	e := &shardEval{sh: sh, k: p.ks[sh.Keyspace]}
	if e.k.problem != "" {
		e.block("%s", e.k.problem)
		return e
	}
	if !p.readShard(e) {
		return e
	}
	switch {
	case e.voters == 0:
		e.block("the configuration has no voter")
		return e
	case e.leader == nil:
		e.block("no leader known")
		return e
	case e.live < quorum(e.voters):
		e.block("no quorum: %d of %d voters live, %d needed", e.live, e.voters, quorum(e.voters))
		return e
	}
	for _, rule := range rules {
		if rule(p, e) {
			break
		}
	}
	if e.main == nil || e.main.Kind.ChangesMembership() {
		p.placeLeader(e)
	}
	return e
}

// readShard fills e.reps and reports the shard's problems; false when the
// configuration itself is inconsistent.
func (p *planner) readShard(e *shardEval) bool {
	sh := e.sh
	e.reps = make([]rep, 0, len(sh.Replicas))
	for _, r := range sh.Replicas {
		x := rep{id: r.Node, voter: r.Voter, caughtUp: r.CaughtUp, leader: r.Node == sh.Leader}
		if n := p.nodes[r.Node]; n != nil {
			x.known, x.loc = true, n.Locality
			x.permitted = e.k.permitted[n.ID]
			x.live = n.Live && !n.Dead
			x.dead = n.Dead
			x.draining = n.Draining
		} else {
			x.dead = true
		}
		if r.Damaged {
			x.live, x.dead, x.damaged = false, true, true
		}
		x.rank = e.k.rankOf(x.loc.Region)
		e.reps = append(e.reps, x)
	}
	sort.Slice(e.reps, func(i, j int) bool { return e.reps[i].id < e.reps[j].id })
	for i := range e.reps {
		r := &e.reps[i]
		switch {
		case r.id == "":
			e.block("the configuration holds a replica with an empty node ID")
			return false
		case i > 0 && e.reps[i-1].id == r.id:
			e.block("the configuration lists node %s twice", clip(r.id))
			return false
		}
		if r.voter {
			e.voters++
			if r.live {
				e.live++
			}
		}
		if r.leader {
			e.leader = r
		}
	}
	if sh.Leader != "" && (e.leader == nil || !e.leader.voter) {
		e.block("leader %s is not a voter of the configuration", clip(sh.Leader))
		return false
	}
	for i := range e.reps {
		r := &e.reps[i]
		switch {
		case !r.known:
			e.problem("replica on %s: the node is not in the cluster", r.desc())
		case !r.permitted:
			e.problem("replica on %s is outside policy %s", r.desc(), e.k.where)
		case r.damaged:
			e.problem("replica on %s is damaged (its stored data failed verification)", r.desc())
		case r.dead:
			e.problem("replica on %s is on a dead node", r.desc())
		case !r.live && r.voter:
			e.problem("voter on %s is down; it is replaced once the node is dead", r.desc())
			e.under = true
		case r.draining:
			e.problem("replica on %s is on a draining node", r.desc())
		}
	}
	return true
}

// bestLeader returns the best permitted live voter other than not (and not
// draining, when active): highest-ranked LeaderPreference region, then not
// draining, then fewest leaderships, then smallest ID; nil if none.
func (p *planner) bestLeader(e *shardEval, not *rep, active bool) *rep {
	var best *rep
	for i := range e.reps {
		r := &e.reps[i]
		if r == not || !r.voter || !r.permitted || !r.live || (active && r.draining) {
			continue
		}
		if best == nil || p.leaderBetter(r, best) {
			best = r
		}
	}
	return best
}

func (p *planner) leaderBetter(a, b *rep) bool {
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	if a.draining != b.draining {
		return !a.draining
	}
	if x, y := p.leads[a.id], p.leads[b.id]; x != y {
		return x < y
	}
	return a.id < b.id
}

// Rule 1: a leader outside the policy or on a dead node hands over, and so
// does one on a draining node when a voter that is not draining can lead.
func (p *planner) leaderResidency(e *shardEval) bool {
	ld := e.leader
	var why string
	switch {
	case !ld.permitted:
		why = fmt.Sprintf("leader %s is outside policy %s", ld.desc(), e.k.where)
	case ld.dead:
		why = fmt.Sprintf("leader %s is dead", ld.desc())
	case ld.draining:
		if t := p.bestLeader(e, ld, true); t != nil {
			e.act(1, TransferLeader, t.id, "leader %s is draining", ld.desc())
			return true
		}
		return false
	default:
		return false
	}
	if t := p.bestLeader(e, ld, false); t != nil {
		e.act(1, TransferLeader, t.id, "%s", why)
		return true
	}
	e.block("%s and no permitted live voter can take over", why)
	return false
}

// Rule 2: a permitted, live, caught-up non-voter becomes a voter.
func (p *planner) promote(e *shardEval) bool {
	for i := range e.reps {
		r := &e.reps[i]
		if !r.voter && r.permitted && r.live && r.caughtUp && !r.draining {
			e.act(2, PromoteVoter, r.id, "non-voter on %s has caught up", r.desc())
			return true
		}
	}
	return false
}

// Rule 4: a replica outside the policy goes, non-voters first, if quorum
// allows; never the leader.
func (p *planner) removeOutside(e *shardEval) bool {
	// A permitted non-voter catching up replaces an outside voter: the
	// voter goes once it is promoted, so the shard never drops below its
	// replica count when a permitted node is there to take over (the
	// transport already ships nothing to the outside replica).
	replacing := false
	for i := range e.reps {
		r := &e.reps[i]
		replacing = replacing || (!r.voter && r.permitted && r.live && !r.dead && !r.draining)
	}
	var out []*rep
	for i := range e.reps {
		if r := &e.reps[i]; !r.permitted && !r.leader && !(r.voter && replacing) {
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].voter != out[j].voter {
			return !out[i].voter
		}
		return !out[i].live && out[j].live
	})
	for _, r := range out {
		if e.canRemove(r) {
			if r.known {
				e.act(4, RemoveReplica, r.id, "%s is outside policy %s", r.desc(), e.k.where)
			} else {
				e.act(4, RemoveReplica, r.id, "%s is not in the cluster", r.desc())
			}
			return true
		}
	}
	if len(out) > 0 {
		e.block("cannot remove %s yet: the remaining voters would lose their quorum of live voters", out[0].desc())
	}
	return false
}

// Rule 3: too few permitted voters and nothing pending: add a non-voter on
// the best target.
func (p *planner) addMissing(e *shardEval) bool {
	want := e.k.policy.Replicas
	var good, pending []*rep
	staying := 0 // permitted voters not dead, draining included
	for i := range e.reps {
		r := &e.reps[i]
		if !r.permitted || r.dead {
			continue
		}
		switch {
		case r.voter:
			staying++
			if !r.draining {
				good = append(good, r)
			}
		case !r.draining:
			pending = append(pending, r)
		}
	}
	for _, r := range pending {
		if r.live {
			e.problem("non-voter on %s is catching up", r.desc())
		} else {
			e.problem("non-voter on %s is down", r.desc())
		}
		e.waiting = true
	}
	if len(good) >= want {
		return false
	}
	short := fmt.Sprintf("%s, policy wants %d", count(len(good), "permitted voter"), want)
	if staying > len(good) {
		short = fmt.Sprintf("%s not draining, policy wants %d", count(len(good), "permitted voter"), want)
	}
	if len(pending) > 0 {
		e.problem("%s", short)
		return false
	}
	if t := p.target(e, good); t != "" {
		e.problem("%s", short)
		e.act(3, AddNonVoter, t, "%s", short)
		return true
	}
	e.problem("%s: %s", short, e.k.shortfall())
	if staying < want {
		e.under = true
	} else {
		e.blocked = true
	}
	return false
}

// target returns the best node to receive a new replica of the shard, with
// existing counting toward the spread, or "".
func (p *planner) target(e *shardEval, existing []*rep) string {
	pl := e.k.pl
	for _, r := range existing {
		pl.count(r.id, 1)
	}
	p.hold(e, true)
	k := pl.best(nil)
	p.hold(e, false)
	for _, r := range existing {
		pl.count(r.id, -1)
	}
	if k < 0 {
		return ""
	}
	return pl.cands[k].id
}

// hold marks (or unmarks) the shard's nodes as chosen in the keyspace's
// placer so that they are not picked as targets.
func (p *planner) hold(e *shardEval, on bool) {
	for i := range e.reps {
		if k, ok := e.k.pl.byID[e.reps[i].id]; ok {
			e.k.pl.chosen[k] = on
		}
	}
}

// spreadCounts returns, for each replica of set, how many of set share its
// region and its zone (itself included).
func spreadCounts(set []*rep) (region, zone map[*rep]int) {
	type key struct{ country, region, zone string }
	byRegion, byZone := make(map[key]int, len(set)), make(map[key]int, len(set))
	for _, r := range set {
		byRegion[key{r.loc.Country, r.loc.Region, ""}]++
		byZone[key{r.loc.Country, r.loc.Region, r.loc.Zone}]++
	}
	region, zone = make(map[*rep]int, len(set)), make(map[*rep]int, len(set))
	for _, r := range set {
		region[r] = byRegion[key{r.loc.Country, r.loc.Region, ""}]
		zone[r] = byZone[key{r.loc.Country, r.loc.Region, r.loc.Zone}]
	}
	return region, zone
}

// permittedVoters returns the shard's voters on permitted nodes.
func (e *shardEval) permittedVoters() []*rep {
	var out []*rep
	for i := range e.reps {
		if r := &e.reps[i]; r.voter && r.permitted {
			out = append(out, r)
		}
	}
	return out
}

// worse orders voters for removal, worst first: outside the policy, dead,
// down, draining, most voters in its region, then in its zone, not the
// leader, most replicas on its node, largest ID.
func (p *planner) worse(e *shardEval, a, b *rep, region, zone map[*rep]int) bool {
	flags := func(r *rep) [4]bool { return [4]bool{!r.permitted, r.dead, !r.live, r.draining} }
	fa, fb := flags(a), flags(b)
	for i := range fa {
		if fa[i] != fb[i] {
			return fa[i]
		}
	}
	if region[a] != region[b] {
		return region[a] > region[b]
	}
	if zone[a] != zone[b] {
		return zone[a] > zone[b]
	}
	if a.leader != b.leader {
		return !a.leader
	}
	if x, y := p.loadWith(e, a.id), p.loadWith(e, b.id); x != y {
		return x > y
	}
	return a.id > b.id
}

// Rule 5: remove a dead or draining non-voter, a dead voter, or the worst
// voter beyond the replica count.
func (p *planner) removeWorst(e *shardEval) bool {
	for i := range e.reps {
		r := &e.reps[i]
		if !r.voter && (r.dead || r.draining) {
			e.act(5, RemoveReplica, r.id, "non-voter on %s is %s", r.desc(), state(r))
			return true
		}
	}
	want := e.k.policy.Replicas
	surplus := e.voters > want
	var cands []*rep
	for i := range e.reps {
		if r := &e.reps[i]; r.voter && (r.dead || surplus) {
			cands = append(cands, r)
		}
	}
	if len(cands) == 0 {
		return false
	}
	region, zone := spreadCounts(e.permittedVoters())
	sort.Slice(cands, func(i, j int) bool { return p.worse(e, cands[i], cands[j], region, zone) })
	for _, r := range cands {
		why := fmt.Sprintf("%s is %s", r.desc(), state(r))
		if surplus {
			why = fmt.Sprintf("%d voters, policy wants %d: %s", e.voters, want, p.whyWorst(e, r, region, zone))
		}
		if r.leader {
			if t := p.bestLeader(e, r, false); t != nil {
				e.act(5, TransferLeader, t.id, "leader is to be removed: %s", why)
				return true
			}
			continue
		}
		if e.canRemove(r) {
			e.act(5, RemoveReplica, r.id, "%s", why)
			return true
		}
	}
	e.block("cannot remove %s yet: the remaining voters would lose their quorum of live voters", cands[0].desc())
	return false
}

// state says what is wrong with a replica's node.
func state(r *rep) string {
	switch {
	case !r.known:
		return "not in the cluster"
	case r.damaged:
		return "damaged"
	case r.dead:
		return "dead"
	case !r.live:
		return "down"
	case r.draining:
		return "draining"
	}
	return "live"
}

func (p *planner) whyWorst(e *shardEval, r *rep, region, zone map[*rep]int) string {
	switch {
	case r.dead || !r.live || r.draining:
		return fmt.Sprintf("%s is %s", r.desc(), state(r))
	case region[r] > 1:
		return fmt.Sprintf("%s shares region %s with %s", r.desc(), regionName(r.loc), count(region[r]-1, "other voter"))
	case zone[r] > 1:
		return fmt.Sprintf("%s shares zone %s with %s", r.desc(), zoneName(r.loc), count(zone[r]-1, "other voter"))
	}
	return fmt.Sprintf("%s holds the most replicas (%d)", r.desc(), p.loadWith(e, r.id))
}

// count returns n and the noun, plural unless n is 1: "2 voters".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func regionName(l Locality) string {
	if l.Region == "" {
		return l.Country + " (no region)"
	}
	return l.Region
}

func zoneName(l Locality) string {
	if l.Zone == "" {
		return regionName(l) + "/(no zone)"
	}
	return regionName(l) + "/" + l.Zone
}

// settled reports whether the shard holds exactly the wanted number of
// voters, all permitted, live and not draining, and no non-voter: the
// shards rules 6 and 8 may improve.
func (e *shardEval) settled() bool {
	if e.main != nil || e.voters != e.k.policy.Replicas || len(e.reps) != e.voters {
		return false
	}
	for i := range e.reps {
		if r := &e.reps[i]; !r.permitted || !r.live || r.draining {
			return false
		}
	}
	return true
}

// Rule 6: swap the worst voter for the best target when that strictly
// improves the spread.
func (p *planner) improveSpread(e *shardEval) bool {
	if !e.settled() {
		return false
	}
	region, zone := spreadCounts(e.permittedVoters())
	var worst *rep
	for i := range e.reps {
		r := &e.reps[i]
		if !r.leader && (worst == nil || p.worse(e, r, worst, region, zone)) {
			worst = r
		}
	}
	if worst == nil {
		return false
	}
	pl := e.k.pl
	for i := range e.reps {
		if r := &e.reps[i]; r != worst {
			pl.count(r.id, 1)
		}
	}
	p.hold(e, true)
	k := pl.best(nil)
	better := false
	var wr, wz, tr, tz int
	if k >= 0 {
		w, t := pl.where[worst.id], pl.cands[k]
		wr, wz, tr, tz = pl.regionCount[w.region], pl.zoneCount[w.zone], pl.regionCount[t.region], pl.zoneCount[t.zone]
		better = tr < wr || (tr == wr && tz < wz)
	}
	p.hold(e, false)
	for i := range e.reps {
		if r := &e.reps[i]; r != worst {
			pl.count(r.id, -1)
		}
	}
	if !better {
		return false
	}
	to := p.nodes[pl.cands[k].id].Locality
	e.frees = worst.id
	if tr < wr {
		e.act(6, AddNonVoter, pl.cands[k].id, "improves spread: a voter moves from region %s (%d voters) to region %s (%d)",
			regionName(worst.loc), wr+1, regionName(to), tr)
	} else {
		e.act(6, AddNonVoter, pl.cands[k].id, "improves spread: a voter moves from zone %s (%d voters) to zone %s (%d)",
			zoneName(worst.loc), wz+1, zoneName(to), tz)
	}
	return true
}

// Rule 8, replicas: move a replica from the shard's most loaded voter to
// the least loaded target when that keeps the spread and evens the load.
func (p *planner) balanceReplicas(e *shardEval) bool {
	if !e.settled() {
		return false
	}
	mean := e.k.mean(p.load)
	var srcs []*rep
	for i := range e.reps {
		if r := &e.reps[i]; !r.leader {
			srcs = append(srcs, r)
		}
	}
	sort.Slice(srcs, func(i, j int) bool {
		if x, y := p.load[srcs[i].id], p.load[srcs[j].id]; x != y {
			return x > y
		}
		return srcs[i].id > srcs[j].id
	})
	pl := e.k.pl
	for _, src := range srcs {
		ls := p.load[src.id]
		for i := range e.reps {
			if r := &e.reps[i]; r != src {
				pl.count(r.id, 1)
			}
		}
		p.hold(e, true)
		s := pl.where[src.id]
		sr, sz := pl.regionCount[s.region], pl.zoneCount[s.zone]
		dst := -1
		for k := range pl.cands {
			c := &pl.cands[k]
			if pl.chosen[k] {
				continue
			}
			cr, cz := pl.regionCount[c.region], pl.zoneCount[c.zone]
			if cr > sr || (cr == sr && cz > sz) {
				continue // would spread the voters worse
			}
			if dst < 0 || c.load < pl.cands[dst].load || (c.load == pl.cands[dst].load && c.id < pl.cands[dst].id) {
				dst = k
			}
		}
		p.hold(e, false)
		for i := range e.reps {
			if r := &e.reps[i]; r != src {
				pl.count(r.id, -1)
			}
		}
		if dst < 0 {
			continue
		}
		ld := pl.cands[dst].load
		if ls-ld >= 2 && (float64(ls) > mean+1 || float64(ld) < mean-1) {
			e.act(8, AddNonVoter, pl.cands[dst].id, "balance: %s holds %s, %s holds %d (mean %.1f)",
				src.desc(), count(ls, "replica"), pl.cands[dst].id, ld, mean)
			e.balance, e.frees = true, src.id
			return true
		}
	}
	return false
}

// Rules 7 and 8, leaders: move leadership into the best-ranked preferred
// region, or to a voter with far fewer leaderships.
// The result goes to e.lead: it is planned when no membership change is.
func (p *planner) placeLeader(e *shardEval) {
	ld := e.leader
	if ld == nil || !ld.permitted || !ld.live {
		return
	}
	if ld.draining {
		return // rule 1 moves it when it can
	}
	lead := func(node, format string, args ...any) {
		e.lead = &Action{Kind: TransferLeader, Shard: e.sh.ID, Keyspace: e.sh.Keyspace, Node: node, Reason: fmt.Sprintf(format, args...)}
	}
	if best := p.bestLeader(e, ld, true); best != nil && best.rank < ld.rank {
		lead(best.id, "leader preference: region %s ranks above %s", regionName(best.loc), regionName(ld.loc))
		return
	}
}

// leaderMove is a candidate balance transfer of rule 8.
type leaderMove struct {
	e      *shardEval
	to     *rep
	ls, lt int // leaderships of the leader and of the target
	mean   float64
}

// leaderMoveFor returns the shard's balance transfer under the loads as
// they stand: to the voter in the leader's preference rank with the fewest
// leaderships, when the leader leads more than the mean and at least 2
// more than it. ok is false when there is none.
func (p *planner) leaderMoveFor(e *shardEval) (m leaderMove, ok bool) {
	ld := e.leader
	if ld == nil || !ld.permitted || !ld.live || ld.draining || e.blocked {
		return m, false
	}
	var to *rep
	for i := range e.reps {
		r := &e.reps[i]
		if r == ld || !r.voter || !r.permitted || !r.live || r.draining || r.rank != ld.rank {
			continue
		}
		if to == nil || p.leads[r.id] < p.leads[to.id] || (p.leads[r.id] == p.leads[to.id] && r.id < to.id) {
			to = r
		}
	}
	if to == nil {
		return m, false
	}
	m = leaderMove{e: e, to: to, ls: p.leads[ld.id], lt: p.leads[to.id], mean: e.k.mean(p.leads)}
	return m, m.ls-m.lt >= 2 && float64(m.ls) > m.mean
}

// better reports whether m evens the leaderships more than o: the larger
// difference first, then the busier leader, then the lower shard ID.
func (m leaderMove) better(o leaderMove) bool {
	if d, od := m.ls-m.lt, o.ls-o.lt; d != od {
		return d > od
	}
	if m.ls != o.ls {
		return m.ls > o.ls
	}
	return m.e.sh.ID < o.e.sh.ID
}

// balanceLeaders plans rule 8's leadership transfers among the shards of
// cands (evaluated shards with nothing planned), largest imbalance first:
// each step takes the best transfer over all of them under the loads as
// the steps before left them, records it, and looks again, until none
// qualifies or MaxLeaderTransfers is spent. A shard moves at most once per
// plan. Taking the steepest step, rather than the shards in ID order,
// keeps a plan from moving a leadership toward a node that later steps of
// the same plan empty, which the next plan would then move back. A
// LeaderHeld shard is never moved; if it still qualifies at the end it is
// reported waiting. It returns the transfer planned for each shard.
func (p *planner) balanceLeaders(cands []*shardEval) map[*shardEval]*Action {
	out := map[*shardEval]*Action{}
	for p.transfers > 0 {
		var best leaderMove
		found := false
		for _, e := range cands {
			if out[e] != nil || e.sh.LeaderHeld {
				continue
			}
			if m, ok := p.leaderMoveFor(e); ok && (!found || m.better(best)) {
				best, found = m, true
			}
		}
		if !found {
			break
		}
		e, ld := best.e, best.e.leader
		a := &Action{Kind: TransferLeader, Shard: e.sh.ID, Keyspace: e.sh.Keyspace, Node: best.to.id,
			Reason: fmt.Sprintf("balance: leader %s leads %s, %s leads %d (mean %.1f)", ld.desc(), count(best.ls, "shard"), best.to.desc(), best.lt, best.mean)}
		out[e] = a
		p.transfers--
		p.record(a, e)
	}
	for _, e := range cands {
		if !e.sh.LeaderHeld {
			continue
		}
		if m, ok := p.leaderMoveFor(e); ok {
			e.problem("leader balance waits: the leadership moved recently (%s leads %s, %s leads %d, mean %.1f)",
				e.leader.desc(), count(m.ls, "shard"), m.to.desc(), m.lt, m.mean)
		}
	}
	return out
}

// decide turns an evaluation into at most one action, within the in-flight
// bound, records the action's effect on the loads and reports the shard.
func (p *planner) decide(e *shardEval) (*Action, ShardReport) {
	rep := ShardReport{Shard: e.sh.ID, Keyspace: e.sh.Keyspace, Problems: e.problems}
	var act *Action
	switch {
	case e.main != nil && (!e.main.Kind.ChangesMembership() || p.inFlight < p.max):
		act = e.main
	case e.main != nil:
		if !e.balance {
			rep.Problems = append(rep.Problems, fmt.Sprintf("waiting to %s %s: %d membership changes in flight or planned, at most %d",
				e.main.Kind, e.main.Node, p.inFlight, p.max))
			e.waiting = true
		}
		act = p.optionalLead(e)
	default:
		act = p.optionalLead(e)
	}
	switch {
	case act != nil:
		rep.Status = Moving
		p.record(act, e)
	case e.blocked:
		rep.Status = Blocked
	case e.under:
		rep.Status = UnderReplicated
	case e.waiting:
		rep.Status = Moving
	case len(rep.Problems) > 0:
		rep.Status = Blocked
	default:
		rep.Status = Conforming
	}
	return act, rep
}

// optionalLead returns the shard's transfer from rules 7 and 8, if any and
// if MaxLeaderTransfers leaves room for it.
func (p *planner) optionalLead(e *shardEval) *Action {
	if e.lead == nil || p.transfers == 0 {
		return nil
	}
	p.transfers--
	return e.lead
}

// record counts a decided action in the loads and the in-flight bound.
func (p *planner) record(a *Action, e *shardEval) {
	switch a.Kind {
	case AddNonVoter:
		p.addLoad(a.Node, 1)
		if e.frees != "" {
			p.depart(e.sh.ID, e.frees)
		}
	case RemoveReplica:
		p.depart(e.sh.ID, a.Node)
	case TransferLeader:
		p.leads[e.sh.Leader]--
		p.leads[a.Node]++
	}
	if a.Kind.ChangesMembership() {
		p.inFlight++
	}
}
