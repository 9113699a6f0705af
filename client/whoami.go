package client

import (
	"context"

	pb "github.com/clover-kv/clover/api/cloverv1"
)

// Identity is who the cluster takes the caller to be.
type Identity struct {
	// Kind is "user", "node" or "unattested" (a cluster in insecure mode,
	// where nothing attests callers).
	Kind string
	// Name is the user name (or node ID); URI the certificate's identity,
	// e.g. spiffe://clover-demo/user/alice.
	Name, URI string
	Roles     []string
	// Country the user works from (ISO 3166-1 alpha-2), and the
	// jurisdictions it belongs to, as the cluster's catalogue has them.
	Country       string
	Jurisdictions []string
	// Node that answered, and whether it runs in insecure mode.
	Node     string
	Insecure bool
}

// WhoAmI asks a node who the caller is: the identity its certificate
// attests, as the node's gateway decides with it.
func (c *Client) WhoAmI(ctx context.Context) (Identity, error) {
	var resp *pb.WhoAmIResponse
	err := c.admin(ctx, true, func(ctx context.Context, a pb.AdminClient) error {
		var err error
		resp, err = a.WhoAmI(ctx, &pb.WhoAmIRequest{})
		return err
	})
	if err != nil {
		return Identity{}, err
	}
	return Identity{Kind: resp.Kind, Name: resp.Name, URI: resp.Uri, Roles: resp.Roles, Country: resp.Country,
		Jurisdictions: resp.Jurisdictions, Node: resp.NodeId, Insecure: resp.Insecure}, nil
}
