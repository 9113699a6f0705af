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
	pf := policyFlags{keep: true}
	cmd := &cobra.Command{
		Use:   "set-policy NAME",
		Short: "Change a keyspace's policy; replicas outside it are replaced under live traffic",
		Example: "  clover keyspace set-policy videos --residency EEA   # bring data held in the US home\n" +
			"  clover keyspace status videos                          # follow the migration",
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
			if err := pf.keepAccess(ctx, c, args[0], &p); err != nil {
				return err
			}
			k, err := c.SetPolicy(ctx, args[0], p)
			if err != nil {
				return err
			}
			return g.showPolicySet(k)
		},
	}
	pf.register(cmd.Flags())
	_ = cmd.MarkFlagRequired("residency")
	return cmd
}

func (g *globals) showPolicySet(k client.Keyspace) error {
	if g.output == "json" {
		return g.printJSON(keyspaceJSON(k))
	}
	fmt.Fprintf(g.out, "keyspace %s: policy now residency %s, class %s, %d replicas\n", k.Name, residencyString(k.Policy), k.Policy.Class, k.Policy.Replicas)
	fmt.Fprintf(g.out, "access: %s\n", accessString(k.Policy))
	fmt.Fprintf(g.out, "nodes outside the policy no longer serve it; follow the move with: clover keyspace status %s\n", k.Name)
	return nil
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
			return g.showKeyspaceStatus(st)
		},
	}
}

func (g *globals) showKeyspaceStatus(st client.KeyspaceStatus) error {
	if g.output == "json" {
		return g.printJSON(keyspaceStatusJSON(st))
	}
	fmt.Fprintf(g.out, "keyspace %s (residency %s, %d replicas): %d conforming, %d moving, %d under-replicated, %d blocked\n",
		st.Name, residencyString(st.Policy), st.Policy.Replicas, st.Conforming, st.Moving, st.UnderReplicated, st.Blocked)
	rows := list(st.Shards, func(s client.ShardPlacement) []string {
		members := list(s.Members, func(m client.Member) string {
			if m.Voter {
				return m.Node
			}
			return m.Node + "(learner)"
		})
		return []string{strconv.FormatUint(s.ShardID, 10), s.Status, orDash(s.Leader), strings.Join(members, ","), strings.Join(s.Problems, "; ")}
	})
	return g.table("SHARD\tSTATUS\tLEADER\tMEMBERS\tPROBLEMS", rows)
}

// orDash is s, or "-" for an empty table cell.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newPlacementCmd(g *globals) *cobra.Command {
	pl := &cobra.Command{Use: "placement", Short: "Prove where data lives and that replicas agree: verify, check, history"}
	pl.AddCommand(newVerifyCmd(g), newCheckCmd(g), newHistoryCmd(g))
	return pl
}

func newVerifyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
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
			if err := g.showVerify(rep); err != nil {
				return err
			}
			if !rep.OK {
				return fmt.Errorf("%w: %d", errViolations, len(rep.Violations))
			}
			return nil
		},
	}
}

func (g *globals) showVerify(rep client.VerifyReport) error {
	if g.output == "json" {
		return g.printJSON(verifyJSON(rep))
	}
	fmt.Fprintf(g.out, "checked %d shards, %d replicas at %s: ", rep.ShardsChecked, rep.ReplicasChecked, rep.Checked.UTC().Format(time.RFC3339))
	if rep.OK {
		fmt.Fprintln(g.out, "every replica is inside its policy and every shard fully replicated")
		return nil
	}
	fmt.Fprintf(g.out, "%d violations\n", len(rep.Violations))
	rows := list(rep.Violations, func(v client.Violation) []string {
		return []string{v.Kind, v.Keyspace, strconv.FormatUint(v.ShardID, 10), orDash(v.Node), v.Detail}
	})
	return g.table("KIND\tKEYSPACE\tSHARD\tNODE\tDETAIL", rows)
}

func newHistoryCmd(g *globals) *cobra.Command {
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
			return g.showHistory(evs)
		},
	}
	hist.Flags().StringVar(&keyspace, "keyspace", "", "only this keyspace")
	hist.Flags().IntVar(&limit, "limit", 50, "at most this many events")
	return hist
}

func (g *globals) showHistory(evs []client.PlacementEvent) error {
	if g.output == "json" {
		return g.printJSON(list(evs, eventJSON))
	}
	rows := list(evs, func(e client.PlacementEvent) []string {
		shard := "-"
		if e.ShardID != 0 {
			shard = strconv.FormatUint(e.ShardID, 10)
		}
		return []string{e.Time.UTC().Format("2006-01-02T15:04:05.000Z"), e.Keyspace, shard, e.Action, orDash(e.Node), e.Reason}
	})
	return g.table("TIME\tKEYSPACE\tSHARD\tACTION\tNODE\tREASON", rows)
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
			if err := g.showCheck(rep); err != nil {
				return err
			}
			if !rep.OK {
				return fmt.Errorf("%w: %d of %d shards", errReplicasDiffer, notIdentical(rep), len(rep.Shards))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&keyspace, "keyspace", "", "check only this keyspace")
	cmd.Flags().DurationVar(&settle, "settle", 10*time.Second, "how long to keep hashing a shard whose replicas differ at different applied indexes")
	return cmd
}

func notIdentical(rep client.ReplicaCheck) int {
	bad := 0
	for _, s := range rep.Shards {
		if s.Status != "identical" {
			bad++
		}
	}
	return bad
}

func (g *globals) showCheck(rep client.ReplicaCheck) error {
	if g.output == "json" {
		return g.printJSON(checkJSON(rep))
	}
	var rows [][]string
	for _, s := range rep.Shards {
		for _, d := range s.Replicas {
			digest, idx := hash(d.Hash), strconv.FormatUint(d.AppliedIndex, 10)
			if d.Err != "" {
				digest, idx = "error: "+d.Err, "-"
			}
			rows = append(rows, []string{s.Keyspace, strconv.FormatUint(s.ShardID, 10), s.Status, d.Node, idx,
				strconv.FormatUint(d.Keys, 10), digest})
		}
	}
	if err := g.table("KEYSPACE\tSHARD\tSTATUS\tNODE\tAPPLIED\tKEYS\tHASH", rows); err != nil {
		return err
	}
	fmt.Fprintf(g.out, "%d shards checked, %d not identical\n", len(rep.Shards), notIdentical(rep))
	return nil
}
