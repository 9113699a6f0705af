package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/placement"
)

// policyFlags are the flags of keyspace create and set-policy that make up
// a policy.
type policyFlags struct {
	residency, class string
	deny, leaderPref []string
	replicas         int
	// keep: set-policy, where a zero --replicas and an empty --class keep
	// the keyspace's current values.
	keep bool
}

func (p *policyFlags) register(f *pflag.FlagSet) {
	f.StringVar(&p.residency, "residency", "", "where replicas may live, comma-separated: jurisdictions (EEA, EU, the operator's own) "+
		"and ISO 3166-1 alpha-2 country codes (CH, IE), or 'anywhere' (required)")
	f.StringSliceVar(&p.deny, "deny", nil, "ISO country codes never permitted, even inside --residency")
	f.StringSliceVar(&p.leaderPref, "leader-preference", nil, "ranked regions to lead from")
	if p.keep {
		f.IntVar(&p.replicas, "replicas", 0, "replicas per shard (0 keeps the current count)")
		f.StringVar(&p.class, "class", "", "data class: personal or public (empty keeps the current class)")
	} else {
		f.IntVar(&p.replicas, "replicas", 3, "replicas per shard")
		f.StringVar(&p.class, "class", "personal", "data class: personal or public")
	}
}

// policy checks the flags, the residency against the cluster's catalogue
// of jurisdictions, and returns the policy they make. Each error names its
// flag and wraps client.ErrInvalidArgument. The cluster checks the policy
// again when it receives it.
func (p *policyFlags) policy(ctx context.Context, c *client.Client) (client.Policy, error) {
	bad := func(format string, args ...any) (client.Policy, error) {
		return client.Policy{}, fmt.Errorf("%w: %s", client.ErrInvalidArgument, fmt.Sprintf(format, args...))
	}
	cat, err := clusterCatalogue(ctx, c)
	if err != nil {
		return client.Policy{}, err
	}
	out := client.Policy{Replicas: p.replicas, Class: strings.ToLower(strings.TrimSpace(p.class)), LeaderPreference: p.leaderPref}
	if out.AllowJurisdictions, out.AllowCountries, err = cat.ParseResidency(p.residency); err != nil {
		return bad("--residency: %v", err)
	}
	for _, code := range p.deny {
		code = strings.ToUpper(strings.TrimSpace(code))
		if !placement.IsCountry(code) {
			return bad("--deny %q: not an ISO 3166-1 alpha-2 country code", code)
		}
		out.DenyCountries = append(out.DenyCountries, code)
	}
	if (out.Replicas != 0 || !p.keep) && (out.Replicas < placement.MinReplicas || out.Replicas > placement.MaxReplicas) {
		return bad("--replicas %d: want %d to %d", out.Replicas, placement.MinReplicas, placement.MaxReplicas)
	}
	if (out.Class != "" || !p.keep) && out.Class != string(placement.ClassPersonal) && out.Class != string(placement.ClassPublic) {
		return bad("--class %q: want personal or public", p.class)
	}
	return out, nil
}

// clusterCatalogue is the catalogue the cluster checks policies against:
// the built-in jurisdictions and the operator-defined ones it reports.
func clusterCatalogue(ctx context.Context, c *client.Client) (*placement.Catalogue, error) {
	js, err := c.Jurisdictions(ctx)
	if err != nil {
		return nil, err
	}
	cat := placement.DefaultCatalogue()
	for _, j := range js {
		if j.Builtin {
			continue
		}
		if cat, err = cat.With(j.Name, j.Countries); err != nil {
			return nil, fmt.Errorf("jurisdiction %s the cluster reports: %w", j.Name, err)
		}
	}
	return cat, nil
}
