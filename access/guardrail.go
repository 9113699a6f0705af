package access

import (
	"errors"
	"fmt"
	"slices"
)

// ErrGuardrail wraps every refusal of Guardrail.Check.
var ErrGuardrail = errors.New("personal-data guardrail")

// RuleGuardrail is the rule a guardrail refusal names.
const RuleGuardrail Rule = "personal-data-guardrail"

// Guardrail is the cluster-wide limit on personal data, set when the
// cluster is founded and kept in its catalogue: no admin request can give a
// personal keyspace a residency or caller jurisdictions outside Countries.
// The zero Guardrail sets no such limit.
type Guardrail struct {
	Name      string   // what the operator named, e.g. "EEA", for messages
	Countries []string // the countries it resolves to, sorted; empty: none
}

// IsSet reports whether the guardrail limits anything.
func (g Guardrail) IsSet() bool { return len(g.Countries) > 0 }

// Check reports whether keyspace next, as an admin asks to create it
// (wasPersonal false) or change it to, is allowed. A personal keyspace
// cannot be made public, with or without a guardrail: its data stays
// personal data. With a guardrail, a personal keyspace's residency and its
// caller jurisdictions must lie inside the guardrail's countries, and
// neither may be anywhere. Errors wrap ErrGuardrail and name the rule, the
// keyspace and the first country outside.
func (g Guardrail) Check(next Keyspace, wasPersonal bool) error {
	if wasPersonal && !next.Personal {
		return g.refuse(next, "a personal keyspace cannot be made public")
	}
	if !next.Personal || !g.IsSet() {
		return nil
	}
	if next.ResidencyAnywhere {
		return g.refuse(next, "the residency of a personal keyspace cannot be anywhere")
	}
	if c, ok := outside(next.ResidencyCountries, g.Countries); ok {
		return g.refuse(next, fmt.Sprintf("the residency would permit %s", c))
	}
	p := next.Access
	if p.CallerAnywhere {
		return g.refuse(next, "the callers of a personal keyspace cannot be anywhere")
	}
	if c, ok := outside(p.CallerCountries, g.Countries); ok {
		return g.refuse(next, fmt.Sprintf("the access policy would serve callers in %s", c))
	}
	return nil
}

func (g Guardrail) refuse(ks Keyspace, why string) error {
	name := g.Name
	if name == "" {
		name = "set"
	}
	return fmt.Errorf("%w (rule %s, %s): keyspace %q: %s", ErrGuardrail, RuleGuardrail, name, ks.Name, why)
}

// outside returns the first of cs not in allowed.
func outside(cs, allowed []string) (string, bool) {
	for _, c := range cs {
		if !slices.Contains(allowed, c) {
			return c, true
		}
	}
	return "", false
}
