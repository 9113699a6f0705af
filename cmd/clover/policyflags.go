package main

import (
	"context"
	"fmt"
	"slices"
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
	// The access policy: --read-roles, --write-roles, --caller-jurisdictions.
	readRoles, writeRoles []string
	callers               string
	// audit: --audit, what the keyspace's audit log records.
	audit string
	// keep: set-policy, where a zero --replicas and an empty --class keep
	// the keyspace's current values, and so does an access flag not given.
	keep  bool
	flags *pflag.FlagSet
}

// The access policy's flags.
const (
	flagReadRoles  = "read-roles"
	flagWriteRoles = "write-roles"
	flagCallers    = "caller-jurisdictions"
	flagAudit      = "audit"
)

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
	kept := "default"
	if p.keep {
		kept = "not given: unchanged; '' restores the default"
	}
	f.StringSliceVar(&p.readRoles, flagReadRoles, nil, "roles whose holders may read the keys: reader, writer, admin (secure mode; "+kept+": reader)")
	f.StringSliceVar(&p.writeRoles, flagWriteRoles, nil, "roles whose holders may write the keys: reader, writer, admin (secure mode; "+kept+": writer)")
	f.StringVar(&p.callers, flagCallers, "", "where callers may work from, comma-separated: jurisdictions and ISO country codes, or 'anywhere' "+
		"(secure mode; "+kept+": the residency for class personal, anywhere for class public)")
	f.StringVar(&p.audit, flagAudit, "", "what the keyspace's audit log records: all (reads and writes), writes or none ("+kept+
		": all for class personal, none for public)")
	p.flags = f
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
	if out.ReadRoles, err = parseRoles(flagReadRoles, p.readRoles); err != nil {
		return client.Policy{}, err
	}
	if out.WriteRoles, err = parseRoles(flagWriteRoles, p.writeRoles); err != nil {
		return client.Policy{}, err
	}
	if out.CallerJurisdictions, err = parseCallers(cat, p.callers); err != nil {
		return client.Policy{}, err
	}
	switch out.Audit = strings.ToLower(strings.TrimSpace(p.audit)); out.Audit {
	case "", "all", "writes", "none":
	default:
		return bad("--audit %q: want all, writes or none", p.audit)
	}
	return out, nil
}

// keepAccess gives out, for set-policy of keyspace name, the current
// access policy of each part whose flag was not given: a change of
// residency leaves who may read and write, and from where, as it was.
func (p *policyFlags) keepAccess(ctx context.Context, c *client.Client, name string, out *client.Policy) error {
	given := func(flag string) bool { return p.flags != nil && p.flags.Changed(flag) }
	if given(flagReadRoles) && given(flagWriteRoles) && given(flagCallers) && given(flagAudit) {
		return nil
	}
	k, err := c.Keyspace(ctx, name)
	if err != nil {
		return err
	}
	if !given(flagReadRoles) {
		out.ReadRoles = k.Policy.ReadRoles
	}
	if !given(flagWriteRoles) {
		out.WriteRoles = k.Policy.WriteRoles
	}
	if !given(flagCallers) {
		out.CallerJurisdictions = k.Policy.CallerJurisdictions
	}
	if !given(flagAudit) {
		out.Audit = k.Policy.Audit
	}
	return nil
}

// dataRoles are the roles a keyspace may name to read or write its keys;
// an auditor never touches data.
var dataRoles = []string{"reader", "writer", "admin"}

// parseRoles checks the roles of flag, in any case, and returns them
// lower case.
func parseRoles(flag string, roles []string) ([]string, error) {
	var out []string
	for _, r := range roles {
		r = strings.ToLower(strings.TrimSpace(r))
		switch {
		case r == "auditor":
			return nil, fmt.Errorf("%w: --%s %q: an auditor never reads or writes a key or value; want reader, writer or admin",
				client.ErrInvalidArgument, flag, r)
		case !slices.Contains(dataRoles, r):
			return nil, fmt.Errorf("%w: --%s %q: unknown role (want reader, writer or admin)", client.ErrInvalidArgument, flag, r)
		case slices.Contains(out, r):
			return nil, fmt.Errorf("%w: --%s lists %q twice", client.ErrInvalidArgument, flag, r)
		}
		out = append(out, r)
	}
	return out, nil
}

// parseCallers checks --caller-jurisdictions against the cluster's
// catalogue as --residency is checked: jurisdictions first, then
// countries, upper case; ["ANY"] for anywhere; nil for none given.
func parseCallers(cat *placement.Catalogue, s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	js, cs, err := cat.ParseResidency(s)
	if err != nil {
		return nil, fmt.Errorf("%w: --%s: %v", client.ErrInvalidArgument, flagCallers, err)
	}
	if len(js)+len(cs) == 0 {
		return []string{"ANY"}, nil
	}
	return append(js, cs...), nil
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
