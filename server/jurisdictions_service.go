package server

import (
	"context"

	pb "github.com/clover-kv/clover/api/cloverv1"
)

// Jurisdictions answers with the meta leader's catalogue, the one every
// policy is checked against, so that a client may check a residency before
// sending it and name what the cluster knows.
func (a *adminService) Jurisdictions(ctx context.Context, req *pb.JurisdictionsRequest) (*pb.JurisdictionsResponse, error) {
	var out *pb.JurisdictionsResponse
	err := a.s.onMetaLeader(ctx, func() error {
		out = &pb.JurisdictionsResponse{}
		cat := a.s.jurisdict
		for _, name := range cat.Names() {
			countries, _ := cat.Countries(name)
			out.Jurisdictions = append(out.Jurisdictions, &pb.Jurisdiction{Name: name, Countries: countries, Builtin: cat.IsBuiltin(name)})
		}
		return nil
	}, func(ctx context.Context, c pb.AdminClient) error {
		var err error
		out, err = c.Jurisdictions(ctx, req)
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return out, nil
}
