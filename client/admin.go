package client

import (
	"context"
	"time"

	"google.golang.org/grpc"

	pb "github.com/clover-kv/clover/api/cloverv1"
)

// Policy says where a keyspace's replicas may live and how many there are.
type Policy struct {
	// AllowJurisdictions (e.g. "EEA", "EU") and AllowCountries (ISO 3166-1
	// alpha-2) permit locations; both empty means anywhere.
	AllowJurisdictions []string
	AllowCountries     []string
	// DenyCountries wins over the allow lists.
	DenyCountries []string
	// Replicas per shard. Default 3.
	Replicas int
	// LeaderPreference ranks regions to lead from.
	LeaderPreference []string
	// Class is "personal" (default) or "public".
	Class string

	// The access policy, enforced by each node's gateway in secure mode:
	// ReadRoles and WriteRoles are the roles whose holders may read and
	// write the keyspace's keys ("reader", "writer", "admin"; empty:
	// reader reads, writer writes); CallerJurisdictions the jurisdictions
	// and ISO country codes callers may work from ("ANY": anywhere; empty:
	// the residency for class personal, anywhere for class public).
	ReadRoles           []string
	WriteRoles          []string
	CallerJurisdictions []string
	// CallerCountries and CallerAnywhere are what the cluster resolved the
	// caller jurisdictions (or their default) to; ignored when sent.
	CallerCountries []string
	CallerAnywhere  bool

	// Audit is what the keyspace's audit log records: "all" (reads and
	// writes), "writes" or "none"; empty: all for class personal, none for
	// public. Read back, it is the resolved value.
	Audit string
}

// Shard is one hash range of a keyspace and where it lives.
type Shard struct {
	ID                 uint64
	HashStart, HashEnd uint64
	Replicas           []string // node IDs
	Leader             string   // node ID, "" when unknown
}

// Keyspace is a named set of keys under one policy.
type Keyspace struct {
	Name    string
	Policy  Policy
	Shards  []Shard
	Created time.Time
}

// Locality is where a node runs.
type Locality struct{ Country, Region, Zone string }

// ReplicaStatus is one shard replica on one node.
type ReplicaStatus struct {
	ShardID      uint64
	Keyspace     string
	Leader       bool
	State        string
	AppliedIndex uint64
	CommitIndex  uint64
	LastIndex    uint64
	// Lag is how many entries the replica is behind its leader.
	Lag uint64
	// Damaged: the replica's stored data failed verification; the node
	// does not run it and the cluster replaces it. Fault says what was
	// found (also set when a state machine halted).
	Damaged bool
	Fault   string
}

// NodeStatus is one node as the cluster sees it.
type NodeStatus struct {
	ID            string
	Locality      Locality
	Jurisdictions []string
	GRPCAddr      string
	Live          bool
	Reachable     bool
	Error         string
	ShardsHeld    int
	ShardsLed     int
	// Refusals counts the requests the node's gateway refused since it
	// started, by rule.
	Refusals map[string]uint64
	Replicas []ReplicaStatus
	// The node's audit alarms: requests failed because their audit entry
	// could not be committed; refusal entries it could not record; its
	// disk below the reserve, so audited requests fail.
	AuditFailures uint64
	AuditDropped  uint64
	AuditDiskFull bool
}

// ClusterStatus is every node with its replicas.
type ClusterStatus struct {
	MetaLeader string
	Nodes      []NodeStatus
	// Placement is the conformance check over the nodes' reports.
	Placement VerifyReport
	// MetaMembers is the meta group's configuration as the answering node
	// knows it.
	MetaMembers []Member
	// PersonalDataJurisdiction is the personal-data guardrail recorded when
	// the cluster was founded (e.g. "EEA"); empty when none was set.
	PersonalDataJurisdiction string
	// Insecure: the cluster runs without certificates; node localities and
	// callers are unattested.
	Insecure bool
}

func (c *Client) admin(ctx context.Context, idempotent bool, f func(ctx context.Context, a pb.AdminClient) error) error {
	return c.do(ctx, request{idempotent: idempotent, call: func(ctx context.Context, cc *grpc.ClientConn) error {
		return f(ctx, pb.NewAdminClient(cc))
	}})
}

// CreateKeyspace creates a keyspace with the given number of shards (0 = 8)
// and placement policy. It fails with ErrCannotPlace when too few live nodes
// inside the policy exist: replicas are never placed outside it, and with
// ErrPermissionDenied (Error.Rule "personal-data-guardrail") when a personal
// keyspace's residency or callers would lie outside the cluster's
// personal-data guardrail.
func (c *Client) CreateKeyspace(ctx context.Context, name string, shards int, p Policy) (Keyspace, error) {
	req := &pb.CreateKeyspaceRequest{Name: name, Shards: uint32(shards), Policy: policyToPB(p)}
	var resp *pb.CreateKeyspaceResponse
	err := c.admin(ctx, false, func(ctx context.Context, a pb.AdminClient) error {
		var err error
		resp, err = a.CreateKeyspace(ctx, req)
		return err
	})
	if err != nil {
		return Keyspace{}, err
	}
	if !c.cfg.Direct {
		_ = c.refreshRoutes(ctx, 0)
	}
	return keyspaceFromPB(resp.Keyspace), nil
}

// DropKeyspace deletes a keyspace and all its data.
func (c *Client) DropKeyspace(ctx context.Context, name string) error {
	err := c.admin(ctx, false, func(ctx context.Context, a pb.AdminClient) error {
		_, err := a.DropKeyspace(ctx, &pb.DropKeyspaceRequest{Name: name})
		return err
	})
	if err == nil && !c.cfg.Direct {
		_ = c.refreshRoutes(ctx, 0)
	}
	return err
}

// Keyspaces lists every keyspace.
func (c *Client) Keyspaces(ctx context.Context) ([]Keyspace, error) {
	var resp *pb.ListKeyspacesResponse
	err := c.admin(ctx, true, func(ctx context.Context, a pb.AdminClient) error {
		var err error
		resp, err = a.ListKeyspaces(ctx, &pb.ListKeyspacesRequest{})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Keyspace, len(resp.Keyspaces))
	for i, k := range resp.Keyspaces {
		out[i] = keyspaceFromPB(k)
	}
	return out, nil
}

// Keyspace describes one keyspace, with its shards' replicas and leaders.
func (c *Client) Keyspace(ctx context.Context, name string) (Keyspace, error) {
	var resp *pb.GetKeyspaceResponse
	err := c.admin(ctx, true, func(ctx context.Context, a pb.AdminClient) error {
		var err error
		resp, err = a.GetKeyspace(ctx, &pb.GetKeyspaceRequest{Name: name})
		return err
	})
	if err != nil {
		return Keyspace{}, err
	}
	return keyspaceFromPB(resp.Keyspace), nil
}

// ClusterStatus reports every node: locality, jurisdictions, liveness, and
// the replicas it holds and leads with their Raft lag.
func (c *Client) ClusterStatus(ctx context.Context) (ClusterStatus, error) {
	var resp *pb.ClusterStatusResponse
	err := c.admin(ctx, true, func(ctx context.Context, a pb.AdminClient) error {
		var err error
		resp, err = a.ClusterStatus(ctx, &pb.ClusterStatusRequest{})
		return err
	})
	if err != nil {
		return ClusterStatus{}, err
	}
	out := ClusterStatus{MetaLeader: resp.MetaLeader, Placement: verifyFromPB(resp.Placement),
		PersonalDataJurisdiction: resp.PersonalDataJurisdiction, Insecure: resp.Insecure}
	for _, m := range resp.MetaMembers {
		out.MetaMembers = append(out.MetaMembers, Member{Node: m.NodeId, Voter: m.Voter})
	}
	for _, n := range resp.Nodes {
		ns := NodeStatus{Reachable: n.Reachable, Error: n.Error, ShardsHeld: int(n.ShardsHeld), ShardsLed: int(n.ShardsLed), Refusals: n.Refusals,
			AuditFailures: n.AuditFailures, AuditDropped: n.AuditDropped, AuditDiskFull: n.AuditDiskFull}
		if ni := n.Node; ni != nil {
			ns.ID, ns.GRPCAddr, ns.Live, ns.Jurisdictions = ni.Id, ni.GrpcAddr, ni.Live, ni.Jurisdictions
			ns.Locality = Locality{Country: ni.Locality.GetCountry(), Region: ni.Locality.GetRegion(), Zone: ni.Locality.GetZone()}
		}
		for _, r := range n.Shards {
			ns.Replicas = append(ns.Replicas, ReplicaStatus{ShardID: r.ShardId, Keyspace: r.Keyspace, Leader: r.Leader, State: r.State,
				AppliedIndex: r.AppliedIndex, CommitIndex: r.CommitIndex, LastIndex: r.LastIndex, Lag: r.Lag,
				Damaged: r.Damaged, Fault: r.Fault})
		}
		out.Nodes = append(out.Nodes, ns)
	}
	return out, nil
}

func keyspaceFromPB(k *pb.Keyspace) Keyspace {
	out := Keyspace{Name: k.Name, Created: time.UnixMilli(k.CreatedUnixMs)}
	out.Policy = policyFromPB(k.Policy)
	for _, s := range k.Shards {
		out.Shards = append(out.Shards, Shard{ID: s.Id, HashStart: s.HashStart, HashEnd: s.HashEnd, Replicas: s.Replicas, Leader: s.Leader})
	}
	return out
}
