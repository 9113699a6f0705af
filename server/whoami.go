package server

import (
	"context"

	"github.com/clover-kv/clover/access"
	pb "github.com/clover-kv/clover/api/cloverv1"
)

// WhoAmI answers the caller's identity as this node's gateway sees it.
func (a *adminService) WhoAmI(ctx context.Context, _ *pb.WhoAmIRequest) (*pb.WhoAmIResponse, error) {
	s := a.s
	resp := &pb.WhoAmIResponse{NodeId: s.cfg.NodeID, Insecure: !s.cfg.Secure(), Kind: access.Unattested.String()}
	ci, ok := callerOf(ctx)
	if !ok || ci.caller.Kind == access.Unattested {
		return resp, nil
	}
	c := ci.caller
	resp.Kind, resp.Name, resp.Uri, resp.Country = c.Kind.String(), c.Name, ci.id.URI(), c.Country
	for _, r := range c.Roles {
		resp.Roles = append(resp.Roles, string(r))
	}
	if c.Country != "" {
		resp.Jurisdictions = s.jurisdict.JurisdictionsOf(c.Country)
	}
	return resp, nil
}
