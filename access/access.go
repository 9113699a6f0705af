package access

import (
	"fmt"
	"slices"
	"strings"
)

// Role is a user's role, carried in its certificate.
type Role string

// Roles.
const (
	RoleReader  Role = "reader"  // reads keys of keyspaces that list it (the default read role)
	RoleWriter  Role = "writer"  // writes keys of keyspaces that list it (the default write role)
	RoleAdmin   Role = "admin"   // creates, drops and changes keyspaces and nodes; reads no data
	RoleAuditor Role = "auditor" // status, placement proof, audit; never a key or value
)

// Kind is what kind of party a caller is.
type Kind int

// Caller kinds.
const (
	// Unattested: insecure mode, no certificate to attest anything.
	Unattested Kind = iota
	// User: a user certificate of the cluster CA.
	User
	// Node: a node certificate of the cluster CA.
	Node
)

func (k Kind) String() string {
	switch k {
	case User:
		return "user"
	case Node:
		return "node"
	}
	return "unattested"
}

// Caller is the party a request comes from, as its certificate attests it.
type Caller struct {
	Kind  Kind
	Name  string // user name or node ID
	Roles []Role // users only
	// Country: for a user the ISO 3166-1 alpha-2 country the holder works
	// from; for a node the country of its attested locality.
	Country string
	// OnBehalfOf is the user a node forwards a request for, when Kind is
	// Node and the node let that user's request in at its own door.
	OnBehalfOf *Caller
}

// has reports whether the caller holds one of the roles.
func (c *Caller) has(roles ...Role) bool {
	for _, r := range c.Roles {
		if slices.Contains(roles, r) {
			return true
		}
	}
	return false
}

// hasDataRole reports whether the caller holds one of need, auditor not
// counted: an auditor never touches data, whatever a policy lists.
func (c *Caller) hasDataRole(need []Role) bool {
	for _, r := range c.Roles {
		if r != RoleAuditor && slices.Contains(need, r) {
			return true
		}
	}
	return false
}

// Op is what a request does.
type Op int

// Operations.
const (
	// Read reads keys or values of a keyspace.
	Read Op = iota + 1
	// Write writes or deletes keys of a keyspace.
	Write
	// Route reads the routing table, the jurisdiction catalogue or the
	// caller's own identity: no key, value or placement detail.
	Route
	// Status reads cluster and keyspace status, policies and placement.
	Status
	// Proof reads the placement proof: verify, history, replica check.
	Proof
	// Admin changes keyspaces, policies or nodes.
	Admin
	// Internal is node-to-node traffic: the Internal service.
	Internal
)

var opNames = map[Op]string{Read: "read", Write: "write", Route: "route", Status: "status", Proof: "proof", Admin: "admin", Internal: "internal"}

func (o Op) String() string {
	if n, ok := opNames[o]; ok {
		return n
	}
	return fmt.Sprintf("op(%d)", int(o))
}

// Keyspace is what Decide needs of a keyspace for a data operation.
type Keyspace struct {
	Name     string
	Personal bool // class personal
	// ResidencyCountries are the countries the keyspace's policy permits
	// (ResidencyAnywhere: every country but the denied ones, listed).
	ResidencyCountries []string
	ResidencyAnywhere  bool
	Access             Policy
}

// Policy is a keyspace's access policy. Its zero value is the default:
// reader reads, writer writes, and callers come from the keyspace's
// residency (class personal) or anywhere (class public).
type Policy struct {
	ReadRoles  []Role // empty: [reader]
	WriteRoles []Role // empty: [writer]
	// CallerCountries are the countries callers may work from, resolved
	// from the jurisdictions and countries the policy names; with
	// CallerAnywhere, every country. Both zero: the default above.
	CallerCountries []string
	CallerAnywhere  bool
}

var (
	defaultReadRoles  = []Role{RoleReader}
	defaultWriteRoles = []Role{RoleWriter}
)

// IsDefault reports whether p is the default policy.
func (p Policy) IsDefault() bool {
	return len(p.ReadRoles) == 0 && len(p.WriteRoles) == 0 && len(p.CallerCountries) == 0 && !p.CallerAnywhere
}

func (p Policy) readRoles() []Role {
	if len(p.ReadRoles) == 0 {
		return defaultReadRoles
	}
	return p.ReadRoles
}

func (p Policy) writeRoles() []Role {
	if len(p.WriteRoles) == 0 {
		return defaultWriteRoles
	}
	return p.WriteRoles
}

// callers returns the countries callers may work from and whether that is
// anywhere, for keyspace ks.
func (ks *Keyspace) callers() (countries []string, anywhere bool) {
	p := ks.Access
	switch {
	case p.CallerAnywhere:
		return nil, true
	case len(p.CallerCountries) > 0:
		return p.CallerCountries, false
	case ks.Personal:
		return ks.ResidencyCountries, false
	}
	return nil, true
}

// Rule names a rule of Decide. Rules are stable identifiers: metric labels
// and refusals carry them.
type Rule string

// Rules.
const (
	RuleInsecure           Rule = "insecure-mode"
	RuleNodeOnly           Rule = "node-only"
	RuleNodeNotUser        Rule = "node-not-user"
	RuleRole               Rule = "role"
	RuleCallerJurisdiction Rule = "caller-jurisdiction"
	RuleDefaultDeny        Rule = "default-deny"
	// RuleAllowed is the rule of every allowing decision in secure mode.
	RuleAllowed Rule = "allowed"
)

// Rules lists every rule, for metrics.
func Rules() []Rule {
	return []Rule{RuleInsecure, RuleNodeOnly, RuleNodeNotUser, RuleRole, RuleCallerJurisdiction, RuleDefaultDeny, RuleAllowed}
}

// Decision is the outcome of Decide.
type Decision struct {
	Allowed bool
	Rule    Rule
	// Reason says why in words, naming the caller, the operation and the
	// keyspace, never a key or value.
	Reason string
}

// Error is the refusal's message: the rule and the reason.
func (d Decision) Error() string {
	return fmt.Sprintf("permission denied by rule %s: %s", d.Rule, d.Reason)
}

// allow is an allowing decision. Its reason is a fixed phrase: Decide runs
// on every request, and an allowed one needs no explanation built.
func allow(rule Rule, reason string) Decision {
	return Decision{Allowed: true, Rule: rule, Reason: reason}
}

func deny(rule Rule, format string, args ...any) Decision {
	return Decision{Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

// Decide decides whether c may do op; ks is the keyspace of a Read or
// Write and is ignored otherwise. It is deterministic and denies by
// default: an unknown op or kind, a data operation without a keyspace, a
// caller without roles or country, are refused.
func Decide(c Caller, op Op, ks *Keyspace) Decision {
	if _, ok := opNames[op]; !ok {
		return deny(RuleDefaultDeny, "unknown operation %d", int(op))
	}
	switch c.Kind {
	case Unattested:
		return allow(RuleInsecure, "insecure mode: callers are not attested")
	case Node:
		return decideNode(c, op, ks)
	case User:
		return decideUser(c, op, ks)
	}
	return deny(RuleDefaultDeny, "unknown caller kind %d", int(c.Kind))
}

func decideNode(c Caller, op Op, ks *Keyspace) Decision {
	// A node touches a keyspace's data (forwarding a user's request, or
	// the internal service's scans) only if the keyspace may live in the
	// node's own country: a node outside it never holds, serves or relays
	// its data, so no forged request of its own can fetch it either.
	if ks != nil && !ks.residencyPermits(c.Country) {
		return deny(RuleNodeNotUser, "node %s is in %s, outside the residency of keyspace %q", c.Name, orNone(c.Country), ks.Name)
	}
	switch {
	case op == Internal:
		return allow(RuleAllowed, "a node: internal")
	case op == Proof:
		// A node relaying an auditor's call to the node holding an audit
		// stream, or reading checkpoints: the audit service serves a
		// keyspace's streams only to nodes its residency permits.
		return allow(RuleAllowed, "a node: proof")
	case c.OnBehalfOf != nil && c.OnBehalfOf.Kind == User && (op == Read || op == Write):
		// The forwarding node decided at its door; decide again here, on
		// the user it forwards for.
		return decideUser(*c.OnBehalfOf, op, ks)
	}
	return deny(RuleNodeNotUser, "a node certificate (%s) is not a user: %s refused", c.Name, op)
}

// residencyPermits reports whether the keyspace may live in country.
func (ks *Keyspace) residencyPermits(country string) bool {
	return country != "" && (ks.ResidencyAnywhere || slices.Contains(ks.ResidencyCountries, country))
}

func decideUser(c Caller, op Op, ks *Keyspace) Decision {
	switch op {
	case Internal:
		return deny(RuleNodeOnly, "%s: the internal service serves nodes only", userName(c))
	case Route:
		return allow(RuleAllowed, "route: any user")
	case Status, Proof:
		if c.has(RoleAuditor, RoleAdmin) {
			return allow(RuleAllowed, "status and proof: auditor or admin")
		}
		return deny(RuleRole, "%s (roles %s): %s needs role auditor or admin", userName(c), roleList(c.Roles), op)
	case Admin:
		if c.has(RoleAdmin) {
			return allow(RuleAllowed, "admin: admin")
		}
		return deny(RuleRole, "%s (roles %s): admin needs role admin", userName(c), roleList(c.Roles))
	}
	// Read or Write.
	if ks == nil {
		return deny(RuleDefaultDeny, "%s: %s without a keyspace", userName(c), op)
	}
	need := ks.Access.readRoles()
	if op == Write {
		need = ks.Access.writeRoles()
	}
	if !c.hasDataRole(need) {
		return deny(RuleRole, "%s (roles %s): %s of keyspace %q needs role %s", userName(c), roleList(c.Roles), op, ks.Name, roleList(need))
	}
	countries, anywhere := ks.callers()
	if !anywhere && (c.Country == "" || !slices.Contains(countries, c.Country)) {
		class := "public"
		if ks.Personal {
			class = "personal"
		}
		return deny(RuleCallerJurisdiction, "%s works from %s, outside the caller jurisdictions of keyspace %q (class %s: %s)",
			userName(c), orNone(c.Country), ks.Name, class, summarise(countries))
	}
	return allow(RuleAllowed, "data: role and caller jurisdiction")
}

func roleList(rs []Role) string {
	if len(rs) == 0 {
		return "none"
	}
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ",")
}

func orNone(s string) string {
	if s == "" {
		return "no country"
	}
	return s
}

// summarise lists up to eight countries, then how many more.
func summarise(cs []string) string {
	const show = 8
	if len(cs) == 0 {
		return "no country"
	}
	if len(cs) <= show {
		return strings.Join(cs, ",")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(cs[:show], ","), len(cs)-show)
}

// userName names a user in a refusal.
func userName(c Caller) string { return "user " + c.Name }
