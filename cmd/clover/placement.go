package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/clover-kv/clover/client"
)

// errViolations makes `placement verify` exit non-zero when it finds any.
var errViolations = errors.New("placement violations found")

// errReplicasDiffer makes `placement check` exit non-zero when a shard's
// replicas are not shown identical.
var errReplicasDiffer = errors.New("replicas not identical")

func ksSetPolicy(g *globals) *cobra.Command {
	var residency, class string
	var deny, leaderPref []string
	var replicas int
	cmd := &cobra.Command{
		Use:   "set-policy NAME",
		Short: "Change a keyspace's policy; replicas outside it are replaced under live traffic",
		Example: "  clover keyspace set-policy videos --residency EEA   # bring data held in the US home\n" +
			"  clover keyspace status videos                          # follow the migration",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			jur, countries := splitResidency(residency)
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			k, err := c.SetPolicy(ctx, args[0], client.Policy{AllowJurisdictions: jur, AllowCountries: countries,
				DenyCountries: deny, Replicas: replicas, LeaderPreference: leaderPref, Class: class})
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(k)
			}
			fmt.Fprintf(g.out, "keyspace %s: policy now residency %s, class %s, %d replicas\n", k.Name, residencyString(k.Policy), k.Policy.Class, k.Policy.Replicas)
			fmt.Fprintf(g.out, "nodes outside the policy no longer serve it; follow the move with: clover keyspace status %s\n", k.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&residency, "residency", "", "where replicas may live (EEA, EU, EEA,CH, IE, anywhere) (required)")
	f.StringSliceVar(&deny, "deny", nil, "countries never permitted")
	f.IntVar(&replicas, "replicas", 0, "replicas per shard (0 keeps the current count)")
	f.StringVar(&class, "class", "", "data class: personal or public (empty keeps the current class)")
	f.StringSliceVar(&leaderPref, "leader-preference", nil, "ranked regions to lead from")
	_ = cmd.MarkFlagRequired("residency")
	return cmd
}

func ksStatus(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "status NAME", Short: "Placement progress: shards conforming, moving, under-replicated, blocked (and why)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			st, err := c.KeyspaceStatus(ctx, args[0])
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(st)
			}
			fmt.Fprintf(g.out, "keyspace %s (residency %s, %d replicas): %d conforming, %d moving, %d under-replicated, %d blocked\n",
				st.Name, residencyString(st.Policy), st.Policy.Replicas, st.Conforming, st.Moving, st.UnderReplicated, st.Blocked)
			var rows [][]string
			for _, s := range st.Shards {
				var members []string
				for _, m := range s.Members {
					if m.Voter {
						members = append(members, m.Node)
					} else {
						members = append(members, m.Node+"(learner)")
					}
				}
				leader := s.Leader
				if leader == "" {
					leader = "-"
				}
				rows = append(rows, []string{strconv.FormatUint(s.ShardID, 10), s.Status, leader, strings.Join(members, ","), strings.Join(s.Problems, "; ")})
			}
			return g.table("SHARD\tSTATUS\tLEADER\tMEMBERS\tPROBLEMS", rows)
		},
	}
}

func newPlacementCmd(g *globals) *cobra.Command {
	pl := &cobra.Command{Use: "placement", Short: "Prove where data lives: verify and history"}
	pl.AddCommand(&cobra.Command{
		Use:   "verify",
		Short: "Check every shard's actual Raft configuration against its policy; exit 5 on any violation",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			rep, err := c.VerifyPlacement(ctx)
			if err != nil {
				return err
			}
			if g.output == "json" {
				if err := g.printJSON(rep); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(g.out, "checked %d shards, %d replicas at %s: ", rep.ShardsChecked, rep.ReplicasChecked, rep.Checked.UTC().Format(time.RFC3339))
				if rep.OK {
					fmt.Fprintln(g.out, "every replica is inside its policy and every shard fully replicated")
				} else {
					fmt.Fprintf(g.out, "%d violations\n", len(rep.Violations))
					var rows [][]string
					for _, v := range rep.Violations {
						node := v.Node
						if node == "" {
							node = "-"
						}
						rows = append(rows, []string{v.Kind, v.Keyspace, strconv.FormatUint(v.ShardID, 10), node, v.Detail})
					}
					if err := g.table("KIND\tKEYSPACE\tSHARD\tNODE\tDETAIL", rows); err != nil {
						return err
					}
				}
			}
			if !rep.OK {
				return fmt.Errorf("%w: %d", errViolations, len(rep.Violations))
			}
			return nil
		},
	})
	pl.AddCommand(newCheckCmd(g))
	var keyspace string
	var limit int
	hist := &cobra.Command{
		Use: "history", Short: "When each replica was added or removed where, and why (newest first)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			evs, err := c.PlacementHistory(ctx, keyspace, limit)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(evs)
			}
			var rows [][]string
			for _, e := range evs {
				shard := "-"
				if e.ShardID != 0 {
					shard = strconv.FormatUint(e.ShardID, 10)
				}
				node := e.Node
				if node == "" {
					node = "-"
				}
				rows = append(rows, []string{e.Time.UTC().Format("2006-01-02T15:04:05.000Z"), e.Keyspace, shard, e.Action, node, e.Reason})
			}
			return g.table("TIME\tKEYSPACE\tSHARD\tACTION\tNODE\tREASON", rows)
		},
	}
	hist.Flags().StringVar(&keyspace, "keyspace", "", "only this keyspace")
	hist.Flags().IntVar(&limit, "limit", 50, "at most this many events")
	pl.AddCommand(hist)
	return pl
}

func newCheckCmd(g *globals) *cobra.Command {
	var keyspace string
	var settle time.Duration
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Compare a hash of every replica's data, shard by shard; exit 5 unless all are identical",
		Long: "Hashes every replica of every shard (of --keyspace, or of all keyspaces) and compares. Replicas holding\n" +
			"the same data are identical; different data at the same applied index is diverged; different data at\n" +
			"different indexes is hashed again until --settle runs out (unsettled), as under steady writes.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			rep, err := c.CheckReplicas(ctx, keyspace, settle)
			if err != nil {
				return err
			}
			bad := 0
			for _, s := range rep.Shards {
				if s.Status != "identical" {
					bad++
				}
			}
			if g.output == "json" {
				if err := g.printJSON(rep); err != nil {
					return err
				}
			} else {
				var rows [][]string
				for _, s := range rep.Shards {
					for _, d := range s.Replicas {
						hash, idx := fmt.Sprintf("%016x", d.Hash), strconv.FormatUint(d.AppliedIndex, 10)
						if d.Err != "" {
							hash, idx = "error: "+d.Err, "-"
						}
						rows = append(rows, []string{s.Keyspace, strconv.FormatUint(s.ShardID, 10), s.Status, d.Node, idx,
							strconv.FormatUint(d.Keys, 10), hash})
					}
				}
				if err := g.table("KEYSPACE\tSHARD\tSTATUS\tNODE\tAPPLIED\tKEYS\tHASH", rows); err != nil {
					return err
				}
				fmt.Fprintf(g.out, "%d shards checked, %d not identical\n", len(rep.Shards), bad)
			}
			if !rep.OK {
				return fmt.Errorf("%w: %d of %d shards", errReplicasDiffer, bad, len(rep.Shards))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&keyspace, "keyspace", "", "check only this keyspace")
	cmd.Flags().DurationVar(&settle, "settle", 10*time.Second, "how long to keep hashing a shard whose replicas differ at different applied indexes")
	return cmd
}
