package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clover-kv/clover/client"
)

func newClusterCmd(g *globals) *cobra.Command {
	cl := &cobra.Command{Use: "cluster", Short: "Cluster status"}
	cl.AddCommand(&cobra.Command{
		Use: "status", Short: "Every node: locality, jurisdictions, liveness, shards held and led, Raft lag", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			st, err := c.ClusterStatus(ctx)
			if err != nil {
				return err
			}
			return g.showClusterStatus(st)
		},
	})
	return cl
}

func (g *globals) showClusterStatus(st client.ClusterStatus) error {
	if g.output == "json" {
		return g.printJSON(clusterStatusJSON(st))
	}
	var rows [][]string
	for _, n := range st.Nodes {
		live := "down"
		if n.Live && n.Reachable {
			live = "live"
		} else if n.Live {
			live = "unreachable"
		}
		var maxLag uint64
		for _, r := range n.Replicas {
			maxLag = max(maxLag, r.Lag)
		}
		node := n.ID
		if n.ID == st.MetaLeader {
			node += "*"
		}
		rows = append(rows, []string{node,
			fmt.Sprintf("%s/%s/%s", n.Locality.Country, n.Locality.Region, n.Locality.Zone),
			strings.Join(n.Jurisdictions, ","), live, n.GRPCAddr,
			strconv.Itoa(n.ShardsHeld), strconv.Itoa(n.ShardsLed), strconv.FormatUint(maxLag, 10)})
	}
	if err := g.table("NODE\tLOCALITY\tJURISDICTIONS\tSTATE\tGRPC\tHELD\tLED\tMAX LAG", rows); err != nil {
		return err
	}
	fmt.Fprintln(g.out, "* meta-group leader")
	guard := st.PersonalDataJurisdiction
	if guard == "" {
		guard = "none"
	}
	fmt.Fprintf(g.out, "personal-data guardrail: %s\n", guard)
	if st.Insecure {
		fmt.Fprintln(g.out, "insecure mode: no certificates, so node localities and callers are unattested and every caller may do everything")
	}
	refused := map[string]uint64{}
	for _, n := range st.Nodes {
		for r, c := range n.Refusals {
			refused[r] += c
		}
	}
	if len(refused) > 0 {
		rules := make([]string, 0, len(refused))
		for r := range refused {
			rules = append(rules, r)
		}
		sort.Strings(rules)
		parts := make([]string, len(rules))
		for i, r := range rules {
			parts[i] = fmt.Sprintf("%s %d", r, refused[r])
		}
		fmt.Fprintf(g.out, "refused requests by rule: %s\n", strings.Join(parts, ", "))
	}
	return nil
}
