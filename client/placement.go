package client

import (
	"context"
	"time"

	pb "github.com/clover-kv/clover/api/cloverv1"
)

// Member is one member of a shard's Raft configuration.
type Member struct {
	Node  string
	Voter bool
}

// ShardPlacement is one shard's placement state.
type ShardPlacement struct {
	ShardID uint64
	// Status is conforming, moving, under-replicated or blocked.
	Status   string
	Problems []string
	Members  []Member
	Leader   string
}

// KeyspaceStatus is a keyspace's placement progress.
type KeyspaceStatus struct {
	Name                                         string
	Policy                                       Policy
	Conforming, Moving, UnderReplicated, Blocked int
	Shards                                       []ShardPlacement
}

// Violation is one finding of the placement check.
type Violation struct {
	ShardID  uint64
	Keyspace string
	Node     string
	// Kind is outside-policy, stray-replica, under-replicated or no-leader.
	Kind   string
	Detail string
}

// VerifyReport is the result of checking every shard's actual Raft
// configuration against its policy.
type VerifyReport struct {
	OK              bool
	Violations      []Violation
	ShardsChecked   int
	ReplicasChecked int
	Checked         time.Time
}

// PlacementEvent is one entry of the placement history.
type PlacementEvent struct {
	Time     time.Time
	ShardID  uint64
	Keyspace string
	Node     string
	// Action is create, drop, set-policy, add-replica, promote,
	// remove-replica, transfer-leader or record-sync.
	Action string
	Reason string
}

// policyToPB is the policy a client asks for; the resolved caller
// countries are the cluster's to fill in.
func policyToPB(p Policy) *pb.Policy {
	return &pb.Policy{AllowJurisdictions: p.AllowJurisdictions, AllowCountries: p.AllowCountries, DenyCountries: p.DenyCountries,
		Replicas: uint32(p.Replicas), LeaderPreference: p.LeaderPreference, DataClass: p.Class,
		ReadRoles: p.ReadRoles, WriteRoles: p.WriteRoles, CallerJurisdictions: p.CallerJurisdictions, Audit: p.Audit}
}

func policyFromPB(p *pb.Policy) Policy {
	if p == nil {
		return Policy{}
	}
	return Policy{AllowJurisdictions: p.AllowJurisdictions, AllowCountries: p.AllowCountries, DenyCountries: p.DenyCountries,
		Replicas: int(p.Replicas), LeaderPreference: p.LeaderPreference, Class: p.DataClass,
		ReadRoles: p.ReadRoles, WriteRoles: p.WriteRoles, CallerJurisdictions: p.CallerJurisdictions,
		CallerCountries: p.CallerCountries, CallerAnywhere: p.CallerAnywhere, Audit: p.Audit}
}

// SetPolicy changes a keyspace's policy. Nodes outside the new policy stop
// serving the keyspace at once; their replicas are then replaced by permitted
// ones under live traffic (follow it with KeyspaceStatus). Zero Replicas and
// empty Class keep the current values; the rest of p replaces the current
// policy, the access policy included (empty ReadRoles, WriteRoles and
// CallerJurisdictions restore the defaults). A change the cluster's
// personal-data guardrail forbids (a personal keyspace's residency or
// callers outside it, a personal keyspace made public) fails with
// ErrPermissionDenied and Error.Rule "personal-data-guardrail".
func (c *Client) SetPolicy(ctx context.Context, name string, p Policy) (Keyspace, error) {
	var resp *pb.SetPolicyResponse
	err := c.admin(ctx, false, func(ctx context.Context, a pb.AdminClient) error {
		var err error
		resp, err = a.SetPolicy(ctx, &pb.SetPolicyRequest{Name: name, Policy: policyToPB(p)})
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

// KeyspaceStatus reports a keyspace's placement: shards conforming, moving,
// under-replicated and blocked, with the reasons.
func (c *Client) KeyspaceStatus(ctx context.Context, name string) (KeyspaceStatus, error) {
	var resp *pb.KeyspaceStatusResponse
	err := c.admin(ctx, true, func(ctx context.Context, a pb.AdminClient) error {
		var err error
		resp, err = a.KeyspaceStatus(ctx, &pb.KeyspaceStatusRequest{Name: name})
		return err
	})
	if err != nil {
		return KeyspaceStatus{}, err
	}
	out := KeyspaceStatus{Name: resp.Name, Policy: policyFromPB(resp.Policy), Conforming: int(resp.Conforming),
		Moving: int(resp.Moving), UnderReplicated: int(resp.UnderReplicated), Blocked: int(resp.Blocked)}
	for _, s := range resp.Shards {
		sp := ShardPlacement{ShardID: s.ShardId, Status: s.Status, Problems: s.Problems, Leader: s.Leader}
		for _, m := range s.Members {
			sp.Members = append(sp.Members, Member{Node: m.NodeId, Voter: m.Voter})
		}
		out.Shards = append(out.Shards, sp)
	}
	return out, nil
}

// VerifyPlacement reads every shard's actual Raft configuration from its
// replicas and checks each member, and every node holding data, against the
// keyspace's policy. OK is false on any violation.
func (c *Client) VerifyPlacement(ctx context.Context) (VerifyReport, error) {
	var resp *pb.PlacementVerifyResponse
	err := c.admin(ctx, true, func(ctx context.Context, a pb.AdminClient) error {
		var err error
		resp, err = a.PlacementVerify(ctx, &pb.PlacementVerifyRequest{})
		return err
	})
	if err != nil {
		return VerifyReport{}, err
	}
	return verifyFromPB(resp), nil
}

func verifyFromPB(r *pb.PlacementVerifyResponse) VerifyReport {
	out := VerifyReport{OK: r.GetOk(), ShardsChecked: int(r.GetShardsChecked()), ReplicasChecked: int(r.GetReplicasChecked()),
		Checked: time.UnixMilli(r.GetCheckedUnixMs())}
	for _, v := range r.GetViolations() {
		out.Violations = append(out.Violations, Violation{ShardID: v.ShardId, Keyspace: v.Keyspace, Node: v.NodeId, Kind: v.Kind, Detail: v.Detail})
	}
	return out
}

// PlacementHistory returns the most recent placement events (newest first),
// of one keyspace or of all ("").
func (c *Client) PlacementHistory(ctx context.Context, keyspace string, limit int) ([]PlacementEvent, error) {
	var resp *pb.PlacementHistoryResponse
	err := c.admin(ctx, true, func(ctx context.Context, a pb.AdminClient) error {
		var err error
		resp, err = a.PlacementHistory(ctx, &pb.PlacementHistoryRequest{Keyspace: keyspace, Limit: uint32(limit)})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]PlacementEvent, len(resp.Events))
	for i, e := range resp.Events {
		out[i] = PlacementEvent{Time: time.UnixMilli(e.UnixMs), ShardID: e.ShardId, Keyspace: e.Keyspace, Node: e.NodeId, Action: e.Action, Reason: e.Reason}
	}
	return out, nil
}
