// Package placement makes Clover's residency decisions: which countries a
// keyspace's policy permits, and which nodes hold each shard's replicas. It
// is pure: no I/O, no clock, no logging, no shared mutable state; every
// function returns the same answer for the same input.
//
// A node's Locality (country, region, zone) places it in jurisdictions
// through a Catalogue: the built-ins EU (the 27 member states) and EEA (EU
// plus IS, LI, NO), plus sets an operator defines with With. A Policy allows
// jurisdictions and countries, denies countries (deny wins), and sets the
// replica count, leader preference and data class. Placement fails closed:
// when too few permitted live nodes exist, ChooseReplicas and
// ChooseForShards return ErrCannotPlace and never use a node outside the
// policy.
//
//	cat, err := placement.DefaultCatalogue().With("NORDICS", []string{"DK", "FI", "IS", "NO", "SE"})
//	allowJ, allowC, err := cat.ParseResidency("EEA,CH")
//	p := placement.Policy{AllowJurisdictions: allowJ, AllowCountries: allowC,
//		Replicas: 3, Class: placement.ClassPersonal}
//	if err := cat.ValidatePolicy(p); err != nil { ... }
//
//	loc, err := placement.ParseLocality("country=IE,region=ie-dublin,zone=a")
//	ok := cat.Permits(p, loc) // true
//
//	// A new keyspace with 16 shards; replica[0] of each is its first leader.
//	shards, err := cat.ChooseForShards(p, nodes, 16)
//	// Replace a replica on a failed node, keeping the two healthy ones.
//	replicas, err := cat.ChooseReplicas(p, nodes, 3, []string{"n1", "n2"})
//	if errors.Is(err, placement.ErrCannotPlace) { ... stay under-replicated ... }
//	leader := placement.PreferredLeader(p, replicas, nodes) // "" = no preference
//
// The placement controller calls Plan each round with the cluster as it is
// (nodes with liveness, disk use and drain flags, policies by keyspace,
// each shard's actual Raft configuration and leader), executes the actions,
// at most one per shard, and calls Plan again next round. Plan moves
// leaders off nodes outside the policy first, removes replicas outside the
// policy, replaces dead ones, then improves spread, leader preference and
// balance, never below a quorum of live voters and never beyond
// MaxMovesInFlight membership changes at once:
//
//	plan, err := cat.Plan(placement.ClusterState{Nodes: ns, Policies: pols, Shards: shards},
//		placement.PlanConfig{}) // zero value: the defaults
//	for _, a := range plan.Actions { ... AddNonVoter, PromoteVoter, RemoveReplica, TransferLeader ... }
//	for _, r := range plan.Shards { ... r.Status (Conforming, Moving, UnderReplicated, Blocked), r.Problems ... }
//	fmt.Print(plan.Table()) // for people
//
// Catalogues are immutable and safe to share. Functions never modify their
// arguments; returned slices belong to the caller.
package placement
