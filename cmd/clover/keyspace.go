package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clover-kv/clover/client"
)

func newKeyspaceCmd(g *globals) *cobra.Command {
	ks := &cobra.Command{Use: "keyspace", Aliases: []string{"ks"}, Short: "Keyspaces and their policies: create, list, show, drop, set-policy, status"}
	ks.AddCommand(ksCreate(g), ksList(g), ksShow(g), ksDrop(g), ksSetPolicy(g), ksStatus(g))
	return ks
}

func ksCreate(g *globals) *cobra.Command {
	var pf policyFlags
	var shards int
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a keyspace whose replicas stay inside its residency",
		Example: "  clover keyspace create users --residency EEA --replicas 3 --shards 8 --class personal\n" +
			"  clover keyspace create videos --residency anywhere --class public\n" +
			"  clover keyspace create orders --residency EEA --write-roles writer,admin --caller-jurisdictions IE,NO",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			p, err := pf.policy(ctx, c)
			if err != nil {
				return err
			}
			k, err := c.CreateKeyspace(ctx, args[0], shards, p)
			if err != nil {
				return err
			}
			return g.showKeyspace(k)
		},
	}
	pf.register(cmd.Flags())
	cmd.Flags().IntVar(&shards, "shards", 8, "number of shards")
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

// accessString is a keyspace's access policy in one line, its defaults
// marked: "read roles reader (default); write roles writer,admin; callers
// EEA (30 countries)".
func accessString(p client.Policy) string {
	roles := func(rs []string, def string) string {
		if len(rs) == 0 {
			return def + " (default)"
		}
		return strings.Join(rs, ",")
	}
	var callers string
	switch {
	case len(p.CallerJurisdictions) == 0 && p.Class == "public":
		callers = "anywhere (default)"
	case len(p.CallerJurisdictions) == 0:
		callers = "the residency (default)"
	case p.CallerAnywhere:
		callers = "anywhere"
	default:
		callers = fmt.Sprintf("%s (%d countries)", strings.Join(p.CallerJurisdictions, ","), len(p.CallerCountries))
	}
	return fmt.Sprintf("read roles %s; write roles %s; callers %s", roles(p.ReadRoles, "reader"), roles(p.WriteRoles, "writer"), callers)
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
			return g.showKeyspaces(list)
		},
	}
}

func (g *globals) showKeyspaces(ks []client.Keyspace) error {
	if g.output == "json" {
		return g.printJSON(list(ks, keyspaceJSON))
	}
	rows := list(ks, func(k client.Keyspace) []string {
		led := 0
		for _, s := range k.Shards {
			if s.Leader != "" {
				led++
			}
		}
		return []string{k.Name, residencyString(k.Policy), k.Policy.Class, strconv.Itoa(k.Policy.Replicas),
			strconv.Itoa(len(k.Shards)), fmt.Sprintf("%d/%d", led, len(k.Shards))}
	})
	return g.table("NAME\tRESIDENCY\tCLASS\tREPLICAS\tSHARDS\tLED", rows)
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
		return g.printJSON(keyspaceJSON(k))
	}
	fmt.Fprintf(g.out, "keyspace %s: residency %s, class %s, %d replicas, %d shards\n",
		k.Name, residencyString(k.Policy), k.Policy.Class, k.Policy.Replicas, len(k.Shards))
	fmt.Fprintf(g.out, "access: %s\n", accessString(k.Policy))
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
