package client

import (
	"context"

	pb "github.com/clover-kv/clover/api/cloverv1"
)

// Jurisdiction is a named set of countries a policy may allow.
type Jurisdiction struct {
	Name      string   // upper case, e.g. "EEA"
	Countries []string // ISO 3166-1 alpha-2 codes, sorted
	Builtin   bool     // EU and EEA; false for operator-defined sets
}

// Jurisdictions lists the catalogue the cluster checks policies against (the
// meta leader's: built-in and operator-defined jurisdictions), sorted by
// name.
func (c *Client) Jurisdictions(ctx context.Context) ([]Jurisdiction, error) {
	var resp *pb.JurisdictionsResponse
	err := c.admin(ctx, true, func(ctx context.Context, a pb.AdminClient) error {
		var err error
		resp, err = a.Jurisdictions(ctx, &pb.JurisdictionsRequest{})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Jurisdiction, len(resp.Jurisdictions))
	for i, j := range resp.Jurisdictions {
		out[i] = Jurisdiction{Name: j.Name, Countries: j.Countries, Builtin: j.Builtin}
	}
	return out, nil
}
