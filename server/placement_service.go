package server

import (
	"context"
	"fmt"
	"sort"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/placement"
	"github.com/clover-kv/clover/raftfsm"
)

func (a *adminService) SetPolicy(ctx context.Context, req *pb.SetPolicyRequest) (*pb.SetPolicyResponse, error) {
	var out *pb.SetPolicyResponse
	err := a.s.onMetaLeader(ctx, func() error {
		ks, err := a.s.setPolicy(ctx, req)
		if err != nil {
			return err
		}
		out = &pb.SetPolicyResponse{Keyspace: keyspaceToPB(ks, nil)}
		return nil
	}, func(ctx context.Context, c pb.AdminClient) error {
		var err error
		out, err = c.SetPolicy(ctx, req)
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return out, nil
}

// setPolicy replaces a keyspace's policy. From the moment it is committed,
// nodes outside the new policy refuse the keyspace and hand over leadership;
// the placement controller then replaces their replicas with permitted ones.
func (s *Server) setPolicy(ctx context.Context, req *pb.SetPolicyRequest) (*keyspaceRecord, error) {
	if req.Policy == nil {
		return nil, invalidf("no policy given")
	}
	for attempt := 0; ; attempt++ {
		c := s.catalog()
		old, ok := c.keyspaces[req.Name]
		if !ok {
			return nil, fmt.Errorf("%w %q", ErrUnknownKeyspace, req.Name)
		}
		p := policyFromPB(req.Policy)
		if p.Replicas == 0 {
			p.Replicas = old.Policy.Replicas
		}
		if p.Class == "" {
			p.Class = old.Policy.Class
		}
		if err := s.jurisdict.ValidatePolicy(p); err != nil {
			return nil, invalidf("policy: %v", err)
		}
		acc, err := resolveAccess(s.jurisdict, req.Policy)
		if err != nil {
			return nil, err
		}
		if err := validAuditMode(req.Policy.Audit); err != nil {
			return nil, err
		}
		ks := *old
		ks.Policy, ks.Access, ks.Audit = p, acc, req.Policy.Audit
		ks.Countries, ks.Anywhere = s.jurisdict.PermittedCountries(p)
		guard, guardOps := s.guardrailFor(c)
		if err := checkGuardrail(guard, &ks, old.Policy.Class != placement.ClassPublic); err != nil {
			return nil, err
		}
		ops := append([]raftfsm.Op{{Kind: raftfsm.OpPut, Key: metaKSKey(ks.Name), Value: mustJSON(&ks), HasCond: true, CondVersion: old.version}},
			s.historyOps(c, historyEvent{Keyspace: ks.Name, Action: "set-policy",
				Reason: fmt.Sprintf("policy changed from %s %s to %s %s", old.Policy.String(), old.Access.String(), p.String(), acc.String())})...)
		ops = append(ops, guardOps...)
		leaf, err := s.adminLeaf(ctx, "set-policy", ks.Name,
			fmt.Sprintf("policy changed from %s %s audit=%s to %s %s audit=%s", old.Policy.String(), old.Access.String(), old.auditMode(),
				p.String(), acc.String(), ks.auditMode()))
		if err != nil {
			return nil, err
		}
		res, err := s.metaPropose(ctx, raftfsm.Command{Ops: ops, Audit: leaf})
		if isMismatch(err) && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, err
		}
		s.logger.Info("keyspace policy changed", "keyspace", ks.Name, "from", old.Policy.String(), "to", p.String(), "access", acc.String())
		s.waitCatalogApplied(ctx, res.Version)
		s.ctrl.poke()
		return &ks, nil
	}
}

func (a *adminService) KeyspaceStatus(ctx context.Context, req *pb.KeyspaceStatusRequest) (*pb.KeyspaceStatusResponse, error) {
	var out *pb.KeyspaceStatusResponse
	err := a.s.onMetaLeader(ctx, func() error {
		ks, ok := a.s.catalog().keyspaces[req.Name]
		if !ok {
			return fmt.Errorf("%w %q", ErrUnknownKeyspace, req.Name)
		}
		as, err := a.s.ctrl.lastAssessment(ctx)
		if err != nil {
			return unavailablef("placement assessment: %v", err)
		}
		out = keyspaceStatus(ks, as)
		return nil
	}, func(ctx context.Context, c pb.AdminClient) error {
		var err error
		out, err = c.KeyspaceStatus(ctx, req)
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return out, nil
}

func keyspaceStatus(ks *keyspaceRecord, as *assessment) *pb.KeyspaceStatusResponse {
	out := &pb.KeyspaceStatusResponse{Name: ks.Name, Policy: ks.policyPB()}
	reports := map[uint64]placement.ShardReport{}
	for _, r := range as.plan.Shards {
		reports[r.Shard] = r
	}
	for _, sh := range ks.Shards {
		r, ok := reports[sh.ID]
		st := &pb.ShardPlacementStatus{ShardId: sh.ID, Keyspace: ks.Name, Status: "unknown"}
		if ok {
			st.Status, st.Problems = r.Status.String(), r.Problems
			switch r.Status {
			case placement.Conforming:
				out.Conforming++
			case placement.Moving:
				out.Moving++
			case placement.UnderReplicated:
				out.UnderReplicated++
			case placement.Blocked:
				out.Blocked++
			}
		}
		if v := as.views[sh.ID]; v != nil {
			st.Members, st.Leader = v.members, v.leader
		}
		out.Shards = append(out.Shards, st)
	}
	return out
}

func (a *adminService) PlacementVerify(ctx context.Context, _ *pb.PlacementVerifyRequest) (*pb.PlacementVerifyResponse, error) {
	return verifyPlacement(a.s.catalog(), a.s.gatherStatus(ctx)), nil
}

func (a *adminService) PlacementHistory(ctx context.Context, req *pb.PlacementHistoryRequest) (*pb.PlacementHistoryResponse, error) {
	limit := int(req.Limit)
	if limit == 0 {
		limit = 100
	}
	h := a.s.catalog().history
	out := &pb.PlacementHistoryResponse{}
	for i := len(h) - 1; i >= 0 && len(out.Events) < limit; i-- {
		ev := h[i]
		if req.Keyspace != "" && ev.Keyspace != req.Keyspace {
			continue
		}
		out.Events = append(out.Events, &pb.PlacementEvent{UnixMs: ev.UnixMs, ShardId: ev.Shard, Keyspace: ev.Keyspace,
			NodeId: ev.Node, Action: ev.Action, Reason: ev.Reason})
	}
	sort.SliceStable(out.Events, func(i, j int) bool { return out.Events[i].UnixMs > out.Events[j].UnixMs })
	return out, nil
}
