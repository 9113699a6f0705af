package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/placement"
)

func newKeyspaceCmd(g *globals) *cobra.Command {
	ks := &cobra.Command{Use: "keyspace", Aliases: []string{"ks"}, Short: "Create, list, show and drop keyspaces"}
	ks.AddCommand(ksCreate(g), ksList(g), ksShow(g), ksDrop(g), ksSetPolicy(g), ksStatus(g))
	return ks
}

func ksCreate(g *globals) *cobra.Command {
	var residency, class string
	var deny, leaderPref []string
	var replicas, shards int
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a keyspace whose replicas stay inside its residency",
		Example: "  clover keyspace create users --residency EEA --replicas 3 --shards 8 --class personal\n" +
			"  clover keyspace create videos --residency anywhere --class public",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			jur, countries := splitResidency(residency)
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			k, err := c.CreateKeyspace(ctx, args[0], shards, client.Policy{
				AllowJurisdictions: jur, AllowCountries: countries, DenyCountries: deny,
				Replicas: replicas, LeaderPreference: leaderPref, Class: class,
			})
			if err != nil {
				return err
			}
			return g.showKeyspace(k)
		},
	}
	f := cmd.Flags()
	f.StringVar(&residency, "residency", "", "where replicas may live: jurisdictions and/or countries (EEA, EU, EEA,CH, IE) or 'anywhere' (required)")
	f.StringSliceVar(&deny, "deny", nil, "countries never permitted (ISO codes)")
	f.IntVar(&replicas, "replicas", 3, "replicas per shard")
	f.IntVar(&shards, "shards", 8, "number of shards")
	f.StringVar(&class, "class", "personal", "data class: personal or public")
	f.StringSliceVar(&leaderPref, "leader-preference", nil, "ranked regions to lead from")
	_ = cmd.MarkFlagRequired("residency")
	return cmd
}

func residencyString(p client.Policy) string {
	allow := append(append([]string{}, p.AllowJurisdictions...), p.AllowCountries...)
	s := "anywhere"
	if len(allow) > 0 {
		s = strings.Join(allow, ",")
	}
	if len(p.DenyCountries) > 0 {
		s += " except " + strings.Join(p.DenyCountries, ",")
	}
	return s
}

func ksList(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List keyspaces", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			list, err := c.Keyspaces(ctx)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(list)
			}
			var rows [][]string
			for _, k := range list {
				led := 0
				for _, s := range k.Shards {
					if s.Leader != "" {
						led++
					}
				}
				rows = append(rows, []string{k.Name, residencyString(k.Policy), k.Policy.Class, strconv.Itoa(k.Policy.Replicas),
					strconv.Itoa(len(k.Shards)), fmt.Sprintf("%d/%d", led, len(k.Shards))})
			}
			return g.table("NAME\tRESIDENCY\tCLASS\tREPLICAS\tSHARDS\tLED", rows)
		},
	}
}

func ksShow(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "show NAME", Short: "Show a keyspace's policy and where each shard lives", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			k, err := c.Keyspace(ctx, args[0])
			if err != nil {
				return err
			}
			return g.showKeyspace(k)
		},
	}
}

func (g *globals) showKeyspace(k client.Keyspace) error {
	if g.output == "json" {
		return g.printJSON(k)
	}
	fmt.Fprintf(g.out, "keyspace %s: residency %s, class %s, %d replicas, %d shards\n",
		k.Name, residencyString(k.Policy), k.Policy.Class, k.Policy.Replicas, len(k.Shards))
	var rows [][]string
	for _, s := range k.Shards {
		leader := s.Leader
		if leader == "" {
			leader = "-"
		}
		rows = append(rows, []string{strconv.FormatUint(s.ID, 10), fmt.Sprintf("%016x-%016x", s.HashStart, s.HashEnd),
			leader, strings.Join(s.Replicas, ",")})
	}
	return g.table("SHARD\tHASH RANGE\tLEADER\tREPLICAS", rows)
}

func ksDrop(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "drop NAME", Short: "Drop a keyspace and delete its data", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			if err := c.DropKeyspace(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "dropped %s\n", args[0])
			return nil
		},
	}
}

// splitResidency splits --residency into jurisdictions and country codes; the
// cluster validates them against its catalogue (which may hold operator-defined
// jurisdictions). "anywhere" or "any" means no restriction.
func splitResidency(s string) (jurisdictions, countries []string) {
	for _, p := range strings.Split(s, ",") {
		p = strings.ToUpper(strings.TrimSpace(p))
		switch {
		case p == "", p == "ANY", p == "ANYWHERE":
		case placement.IsCountry(p):
			countries = append(countries, p)
		default:
			jurisdictions = append(jurisdictions, p)
		}
	}
	return jurisdictions, countries
}
