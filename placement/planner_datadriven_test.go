package placement

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestPlanScenarios runs the scripts in testdata/plan. Commands:
//
//	node id=ie-1 loc=country=IE,region=ie-dublin,zone=a [dead] [down] [live] [draining] [undrain] [disk=0.95]
//	    adds a node, or changes an existing one (loc may then be left out)
//	policy ks=users residency=EEA replicas=3 [leaders=ie-dublin,no-hamar] [deny=NO] [class=public]
//	shard id=1 (or id=1-6) ks=users voters=ie-1,ie-2 [learners=no-1:caughtup,de-1] [leader=ie-1] [busy]
//	    [held] [damaged=ie-2] (after voters and learners)
//	    adds or replaces shards
//	plan [max-moves=2]     prints Plan.Table()
//	converge [max-moves=2] [rounds=50]
//	    applies every planned action round after round, non-voters catching
//	    up within a round, until the plan is empty and no non-voter is left
//	    to catch up, printing each round's actions, then how often each
//	    shard's leadership moved, the layout and the final plan; fails if
//	    that takes more rounds (default 50)
//	layout                 prints the shards and the nodes' loads
func TestPlanScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/plan", func(t *testing.T, path string) {
		sc := &scenario{c: DefaultCatalogue(), state: ClusterState{Policies: map[string]Policy{}}}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			return sc.run(t, d)
		})
	})
}

type scenario struct {
	c     *Catalogue
	state ClusterState
}

func (sc *scenario) permits(ks string, n *NodeState) bool {
	p, ok := sc.state.Policies[ks]
	return ok && sc.c.Permits(p, n.Locality)
}

func (sc *scenario) run(t *testing.T, d *datadriven.TestData) string {
	switch d.Cmd {
	case "node":
		sc.node(t, d)
		return ""
	case "policy":
		sc.policy(t, d)
		return ""
	case "shard":
		sc.shard(t, d)
		return ""
	case "layout":
		return layout(sc.state)
	case "plan":
		cfg := planConfig(t, d)
		plan := sc.plan(t, d, cfg)
		return plan.Table()
	case "converge":
		return sc.converge(t, d)
	}
	d.Fatalf(t, "unknown command %q", d.Cmd)
	return ""
}

func planConfig(t *testing.T, d *datadriven.TestData) PlanConfig {
	var cfg PlanConfig
	d.MaybeScanArgs(t, "max-moves", &cfg.MaxMovesInFlight)
	return cfg
}

func (sc *scenario) plan(t *testing.T, d *datadriven.TestData, cfg PlanConfig) Plan {
	plan, err := sc.c.Plan(sc.state, cfg)
	if err != nil {
		d.Fatalf(t, "Plan: %v", err)
	}
	if bad := planViolations(sc.state, cfg, plan, sc.permits); len(bad) > 0 {
		d.Fatalf(t, "unsafe plan:\n%s\n%s", strings.Join(bad, "\n"), plan.Table())
	}
	return plan
}

func (sc *scenario) converge(t *testing.T, d *datadriven.TestData) string {
	cfg := planConfig(t, d)
	rounds := 50
	d.MaybeScanArgs(t, "rounds", &rounds)
	var b strings.Builder
	moved := map[uint64]int{}
	for round := 1; ; round++ {
		plan := sc.plan(t, d, cfg)
		if len(plan.Actions) == 0 && !catchingUp(sc.state) {
			fmt.Fprintf(&b, "converged after %d rounds\n", round-1)
			b.WriteString(transferCounts(moved))
			b.WriteString(layout(sc.state))
			b.WriteString(plan.Table())
			return b.String()
		}
		if round > rounds {
			t.Errorf("%s: did not converge in %d rounds", d.Pos, rounds)
			fmt.Fprintf(&b, "did not converge in %d rounds\n", rounds)
			b.WriteString(plan.Table())
			return b.String()
		}
		fmt.Fprintf(&b, "round %d:\n", round)
		if len(plan.Actions) == 0 {
			b.WriteString("  (non-voters catch up)\n")
		}
		for _, a := range plan.Actions {
			fmt.Fprintf(&b, "  %s\n", a)
			if a.Kind == TransferLeader {
				moved[a.Shard]++
			}
		}
		sc.state = applyPlan(sc.state, plan)
	}
}

func (sc *scenario) node(t *testing.T, d *datadriven.TestData) {
	var id string
	d.ScanArgs(t, "id", &id)
	i := slices.IndexFunc(sc.state.Nodes, func(n NodeState) bool { return n.ID == id })
	if i < 0 {
		var locStr string
		d.ScanArgs(t, "loc", &locStr)
		sc.state.Nodes = append(sc.state.Nodes, NodeState{ID: id, Live: true})
		i = len(sc.state.Nodes) - 1
	}
	n := &sc.state.Nodes[i]
	for _, arg := range d.CmdArgs {
		switch arg.Key {
		case "id":
		case "loc":
			l, err := ParseLocality(arg.SingleVal(t))
			if err != nil {
				d.Fatalf(t, "%v", err)
			}
			n.Locality = l
		case "dead":
			n.Live, n.Dead = false, true
		case "down":
			n.Live, n.Dead = false, false
		case "live":
			n.Live, n.Dead = true, false
		case "draining":
			n.Draining = true
		case "undrain":
			n.Draining = false
		case "disk":
			f, err := strconv.ParseFloat(arg.SingleVal(t), 64)
			if err != nil {
				d.Fatalf(t, "disk: %v", err)
			}
			n.DiskUsedFraction = f
		default:
			d.Fatalf(t, "node: unknown argument %q", arg.Key)
		}
	}
}

func (sc *scenario) policy(t *testing.T, d *datadriven.TestData) {
	var ks string
	p := Policy{Class: ClassPersonal}
	for _, arg := range d.CmdArgs {
		v := arg.SingleVal(t)
		switch arg.Key {
		case "ks":
			ks = v
		case "residency":
			var err error
			p.AllowJurisdictions, p.AllowCountries, err = sc.c.ParseResidency(v)
			if err != nil {
				d.Fatalf(t, "%v", err)
			}
		case "replicas":
			n, err := strconv.Atoi(v)
			if err != nil {
				d.Fatalf(t, "replicas: %v", err)
			}
			p.Replicas = n
		case "leaders":
			p.LeaderPreference = strings.Split(v, ",")
		case "deny":
			p.DenyCountries = strings.Split(v, ",")
		case "class":
			p.Class = DataClass(v)
		default:
			d.Fatalf(t, "policy: unknown argument %q", arg.Key)
		}
	}
	sc.state.Policies[ks] = p
}

func (sc *scenario) shard(t *testing.T, d *datadriven.TestData) {
	var ids string
	d.ScanArgs(t, "id", &ids)
	lo, hi, isRange := strings.Cut(ids, "-")
	if !isRange {
		hi = lo
	}
	first, err1 := strconv.ParseUint(lo, 10, 64)
	last, err2 := strconv.ParseUint(hi, 10, 64)
	if err1 != nil || err2 != nil || last < first {
		d.Fatalf(t, "shard: bad id %q", ids)
	}
	var tmpl ShardState
	for _, arg := range d.CmdArgs {
		switch arg.Key {
		case "id":
		case "ks":
			tmpl.Keyspace = arg.SingleVal(t)
		case "voters":
			for _, n := range strings.Split(arg.SingleVal(t), ",") {
				tmpl.Replicas = append(tmpl.Replicas, ReplicaState{Node: n, Voter: true})
			}
		case "learners":
			for _, n := range strings.Split(arg.SingleVal(t), ",") {
				n, caught := strings.CutSuffix(n, ":caughtup")
				tmpl.Replicas = append(tmpl.Replicas, ReplicaState{Node: n, CaughtUp: caught})
			}
		case "damaged":
			for _, n := range strings.Split(arg.SingleVal(t), ",") {
				for i := range tmpl.Replicas {
					if tmpl.Replicas[i].Node == n {
						tmpl.Replicas[i].Damaged = true
					}
				}
			}
		case "leader":
			tmpl.Leader = arg.SingleVal(t)
		case "busy":
			tmpl.Busy = true
		case "held":
			tmpl.LeaderHeld = true
		default:
			d.Fatalf(t, "shard: unknown argument %q", arg.Key)
		}
	}
	for id := first; id <= last; id++ {
		sh := tmpl
		sh.ID = id
		sh.Replicas = slices.Clone(tmpl.Replicas)
		if i := slices.IndexFunc(sc.state.Shards, func(s ShardState) bool { return s.ID == id }); i >= 0 {
			sc.state.Shards[i] = sh
		} else {
			sc.state.Shards = append(sc.state.Shards, sh)
		}
	}
}

// transferCounts prints how many times each shard's leadership moved, by
// count: "leadership moves: 1 on shards 1, 4; 2 on shard 3".
func transferCounts(moved map[uint64]int) string {
	if len(moved) == 0 {
		return "leadership moves: none\n"
	}
	byCount := map[int][]string{}
	for sh, n := range moved {
		byCount[n] = append(byCount[n], strconv.FormatUint(sh, 10))
	}
	counts := make([]int, 0, len(byCount))
	for n := range byCount {
		counts = append(counts, n)
	}
	slices.Sort(counts)
	var parts []string
	for _, n := range counts {
		ids := byCount[n]
		slices.SortFunc(ids, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return x - y })
		parts = append(parts, fmt.Sprintf("%d on %s %s", n, plural(len(ids), "shard"), strings.Join(ids, ", ")))
	}
	return "leadership moves: " + strings.Join(parts, "; ") + "\n"
}

func plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}
