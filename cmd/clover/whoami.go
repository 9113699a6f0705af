package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

type jsonIdentity struct {
	Kind          string   `json:"kind"`
	Name          string   `json:"name"`
	URI           string   `json:"uri"`
	Roles         []string `json:"roles"`
	Country       string   `json:"country"`
	Jurisdictions []string `json:"jurisdictions"`
	Node          string   `json:"node"`
	Insecure      bool     `json:"insecure"`
}

// newWhoAmICmd is clover whoami: the identity, roles and jurisdiction the
// cluster sees in the caller's certificate.
func newWhoAmICmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "whoami", Short: "The identity, roles and jurisdiction the cluster sees in your certificate", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			id, err := c.WhoAmI(ctx)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(jsonIdentity{Kind: id.Kind, Name: id.Name, URI: id.URI, Roles: strs(id.Roles), Country: id.Country,
					Jurisdictions: strs(id.Jurisdictions), Node: id.Node, Insecure: id.Insecure})
			}
			if id.Insecure {
				fmt.Fprintf(g.out, "unattested: node %s runs in insecure mode, where no certificate says who calls\n", id.Node)
				return nil
			}
			rows := [][]string{{id.Kind, id.Name, strings.Join(id.Roles, ","), orDash(id.Country), orDash(strings.Join(id.Jurisdictions, ",")), id.Node}}
			if err := g.table("KIND\tNAME\tROLES\tCOUNTRY\tJURISDICTIONS\tSEEN BY", rows); err != nil {
				return err
			}
			fmt.Fprintln(g.out, id.URI)
			return nil
		},
	}
}
