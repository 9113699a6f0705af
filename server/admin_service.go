package server

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/internal/keys"
	"github.com/clover-kv/clover/placement"
	"github.com/clover-kv/clover/raftfsm"
)

// adminService manages the catalogue. Changes run on the meta-group leader;
// other nodes forward them there (they carry no user data).
type adminService struct {
	pb.UnimplementedAdminServer
	s *Server
}

const (
	defaultShards   = 8
	maxShards       = 1024
	defaultReplicas = 3
	statusTimeout   = 2 * time.Second
)

var keyspaceNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// onMetaLeader runs f here when this node leads the meta group, else forwards
// the call to the leader.
func (s *Server) onMetaLeader(ctx context.Context, local func() error, remote func(ctx context.Context, c pb.AdminClient) error) error {
	if s.meta.isLeader() {
		return local()
	}
	if isForwarded(ctx) {
		return notLeaderError(metaShardID, "")
	}
	addr, err := s.metaLeaderAddr()
	if err != nil {
		return err
	}
	if s.cfg.Secure() {
		// In secure mode a node speaks to the meta leader only for
		// itself, never on a user's behalf: the caller is sent there.
		return notLeaderError(metaShardID, addr)
	}
	cc, err := s.peers.get(addr)
	if err != nil {
		return err
	}
	err = remote(markForwarded(ctx), pb.NewAdminClient(cc))
	if notForwarded(err) && ctx.Err() == nil {
		// The meta leader is unreachable and the call never left.
		return notLeaderError(metaShardID, "")
	}
	return err
}

func (a *adminService) CreateKeyspace(ctx context.Context, req *pb.CreateKeyspaceRequest) (*pb.CreateKeyspaceResponse, error) {
	var out *pb.CreateKeyspaceResponse
	err := a.s.onMetaLeader(ctx, func() error {
		ks, err := a.s.createKeyspace(ctx, req)
		if err != nil {
			return err
		}
		out = &pb.CreateKeyspaceResponse{Keyspace: keyspaceToPB(ks, a.s.shardLeaders(ctx))}
		return nil
	}, func(ctx context.Context, c pb.AdminClient) error {
		var err error
		out, err = c.CreateKeyspace(ctx, req)
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return out, nil
}

func (a *adminService) DropKeyspace(ctx context.Context, req *pb.DropKeyspaceRequest) (*pb.DropKeyspaceResponse, error) {
	err := a.s.onMetaLeader(ctx, func() error {
		c := a.s.catalog()
		if _, ok := c.keyspaces[req.Name]; !ok {
			return fmt.Errorf("%w %q", ErrUnknownKeyspace, req.Name)
		}
		ops := append([]raftfsm.Op{{Kind: raftfsm.OpDelete, Key: metaKSKey(req.Name)}},
			a.s.historyOps(c, historyEvent{Keyspace: req.Name, Action: "drop", Reason: "keyspace dropped; every replica deletes its data"})...)
		leaf, err := a.s.adminLeaf(ctx, "drop-keyspace", req.Name, "keyspace dropped; every replica deletes its data and audit streams")
		if err != nil {
			return err
		}
		res, err := a.s.metaPropose(ctx, raftfsm.Command{Ops: ops, Audit: leaf})
		if err != nil {
			return err
		}
		a.s.waitCatalogApplied(ctx, res.Version)
		return nil
	}, func(ctx context.Context, c pb.AdminClient) error {
		_, err := c.DropKeyspace(ctx, req)
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.DropKeyspaceResponse{}, nil
}

func (a *adminService) ListKeyspaces(ctx context.Context, _ *pb.ListKeyspacesRequest) (*pb.ListKeyspacesResponse, error) {
	leaders := a.s.shardLeaders(ctx)
	out := &pb.ListKeyspacesResponse{}
	for _, ks := range a.s.catalog().sortedKeyspaces() {
		out.Keyspaces = append(out.Keyspaces, keyspaceToPB(ks, leaders))
	}
	return out, nil
}

func (a *adminService) GetKeyspace(ctx context.Context, req *pb.GetKeyspaceRequest) (*pb.GetKeyspaceResponse, error) {
	ks, ok := a.s.catalog().keyspaces[req.Name]
	if !ok {
		return nil, toStatus(fmt.Errorf("%w %q", ErrUnknownKeyspace, req.Name))
	}
	return &pb.GetKeyspaceResponse{Keyspace: keyspaceToPB(ks, a.s.shardLeaders(ctx))}, nil
}

func (a *adminService) RoutingTable(ctx context.Context, req *pb.RoutingTableRequest) (*pb.RoutingTableResponse, error) {
	c := a.s.catalog()
	leaders := a.s.shardLeaders(ctx)
	out := &pb.RoutingTableResponse{MetaIndex: c.index}
	for _, ks := range c.sortedKeyspaces() {
		if req.Keyspace == "" || req.Keyspace == ks.Name {
			out.Keyspaces = append(out.Keyspaces, routesToPB(c, ks, leaders))
		}
	}
	if req.Keyspace != "" && len(out.Keyspaces) == 0 {
		return nil, toStatus(fmt.Errorf("%w %q", ErrUnknownKeyspace, req.Keyspace))
	}
	for _, n := range c.sortedNodes() {
		out.Nodes = append(out.Nodes, a.s.nodeToPB(n))
	}
	return out, nil
}

func (a *adminService) ClusterStatus(ctx context.Context, _ *pb.ClusterStatusRequest) (*pb.ClusterStatusResponse, error) {
	out := &pb.ClusterStatusResponse{Nodes: a.s.gatherStatus(ctx), Insecure: !a.s.cfg.Secure()}
	out.Placement = verifyPlacement(a.s.catalog(), out.Nodes)
	out.PersonalDataJurisdiction = a.s.catalog().guard.guardrail().Name
	if fut := a.s.meta.raft.GetConfiguration(); fut.Error() == nil {
		for _, srv := range fut.Configuration().Servers {
			out.MetaMembers = append(out.MetaMembers, &pb.RaftMember{NodeId: string(srv.ID), Voter: srv.Suffrage == raft.Voter})
		}
	}
	if _, id := a.s.meta.raft.LeaderWithID(); id != "" {
		out.MetaLeader = string(id)
	}
	// Lag of each replica: the shard leader's last index minus what the
	// replica has applied.
	leaderLast := map[uint64]uint64{}
	for _, n := range out.Nodes {
		for _, r := range n.Shards {
			if r.Leader {
				leaderLast[r.ShardId] = r.LastIndex
			}
		}
	}
	for _, n := range out.Nodes {
		for _, r := range n.Shards {
			if last, ok := leaderLast[r.ShardId]; ok && last > r.AppliedIndex {
				r.Lag = last - r.AppliedIndex
			} else if ok {
				r.Lag = 0
			}
		}
	}
	return out, nil
}

// gatherStatus asks every recorded node for its status, in parallel.
func (s *Server) gatherStatus(ctx context.Context) []*pb.NodeStatus {
	nodes := s.catalog().sortedNodes()
	out := make([]*pb.NodeStatus, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		if n.ID == s.cfg.NodeID {
			out[i] = s.localStatus()
			continue
		}
		wg.Add(1)
		go func(i int, n *nodeRecord) {
			defer wg.Done()
			out[i] = &pb.NodeStatus{Node: s.nodeToPB(n)}
			if !n.Live {
				out[i].Error = "not live"
				return
			}
			cctx, cancel := context.WithTimeout(ctx, statusTimeout)
			defer cancel()
			cc, err := s.peers.get(n.GRPCAddr)
			if err == nil {
				var resp *pb.NodeStatusResponse
				if resp, err = pb.NewInternalClient(cc).NodeStatus(cctx, &pb.NodeStatusRequest{}, grpc.WaitForReady(false)); err == nil {
					out[i] = resp.Status
					out[i].Node = s.nodeToPB(n)
					return
				}
			}
			out[i].Error = err.Error()
		}(i, n)
	}
	wg.Wait()
	return out
}

// shardLeaders maps each shard to the node that reports leading it.
func (s *Server) shardLeaders(ctx context.Context) map[uint64]string {
	out := map[uint64]string{}
	for _, st := range s.gatherStatus(ctx) {
		for _, r := range st.Shards {
			if r.Leader && st.Node != nil {
				out[r.ShardId] = st.Node.Id
			}
		}
	}
	return out
}

// createKeyspace places the keyspace's shards and records them. Runs on the
// meta leader.
func (s *Server) createKeyspace(ctx context.Context, req *pb.CreateKeyspaceRequest) (*keyspaceRecord, error) {
	if !keyspaceNamePattern.MatchString(req.Name) {
		return nil, invalidf("keyspace name %q: want 1-64 characters of a-z, 0-9, '_', '-'", req.Name)
	}
	if req.Policy == nil {
		return nil, invalidf("keyspace %q has no policy", req.Name)
	}
	policy := policyFromPB(req.Policy)
	if policy.Replicas == 0 {
		policy.Replicas = defaultReplicas
	}
	if policy.Class == "" {
		policy.Class = placement.ClassPersonal
	}
	shards := int(req.Shards)
	if shards == 0 {
		shards = defaultShards
	}
	if shards < 1 || shards > maxShards {
		return nil, invalidf("shards %d: want 1..%d", shards, maxShards)
	}
	if err := s.jurisdict.ValidatePolicy(policy); err != nil {
		return nil, invalidf("policy: %v", err)
	}
	acc, err := resolveAccess(s.jurisdict, req.Policy)
	if err != nil {
		return nil, err
	}
	if err := validAuditMode(req.Policy.Audit); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		c := s.catalog()
		if _, ok := c.keyspaces[req.Name]; ok {
			return nil, fmt.Errorf("%w: %q", ErrKeyspaceExists, req.Name)
		}
		guard, guardOps := s.guardrailFor(c)
		next := keyspaceRecord{Name: req.Name, Policy: policy, Access: acc}
		next.Countries, next.Anywhere = s.jurisdict.PermittedCountries(policy)
		if err := checkGuardrail(guard, &next, false); err != nil {
			return nil, err
		}
		ks, err := s.planKeyspace(c, req.Name, policy, shards)
		if err != nil {
			return nil, err
		}
		ks.Access, ks.Audit = acc, req.Policy.Audit
		leaf, err := s.adminLeaf(ctx, "create-keyspace", req.Name,
			fmt.Sprintf("keyspace created with %s %s audit=%s, %d shards", policy.String(), acc.String(), ks.auditMode(), shards))
		if err != nil {
			return nil, err
		}
		cmd := raftfsm.Command{Audit: leaf, Ops: []raftfsm.Op{
			{Kind: raftfsm.OpPut, Key: metaKSKey(req.Name), Value: mustJSON(ks), HasCond: true, CondVersion: 0},
			{Kind: raftfsm.OpPut, Key: []byte(metaShardSeq), Value: fmt.Appendf(nil, "%d", c.nextShardID+uint64(shards)),
				HasCond: true, CondVersion: c.seqVersion},
		}}
		cmd.Ops = append(cmd.Ops, guardOps...)
		events := []historyEvent{{Keyspace: req.Name, Action: "create", Reason: "keyspace created with " + policy.String() + " " + acc.String()}}
		for _, sh := range ks.Shards {
			events = append(events, historyEvent{Keyspace: req.Name, Shard: sh.ID, Node: strings.Join(sh.Replicas, ","),
				Action: "add-replica", Reason: "initial placement: permitted live nodes spread across regions, then zones"})
		}
		cmd.Ops = append(cmd.Ops, s.historyOps(c, events...)...)
		res, err := s.metaPropose(ctx, cmd)
		if errors.Is(err, ErrVersionMismatch) && attempt < 3 {
			continue // raced with another change; re-plan on the new catalogue
		}
		if err != nil {
			return nil, err
		}
		s.logger.Info("keyspace created", "keyspace", req.Name, "policy", policy.String(), "access", acc.String(), "shards", shards)
		s.waitCatalogApplied(ctx, res.Version)
		s.waitShardsLed(ctx, ks)
		return ks, nil
	}
}

// planKeyspace chooses replicas for every shard among live nodes the policy
// permits; it fails closed when the policy cannot be met.
func (s *Server) planKeyspace(c *catalog, name string, policy placement.Policy, shards int) (*keyspaceRecord, error) {
	alive := s.gossip.members()
	counts := c.replicaCounts()
	var nodes []placement.Node
	for _, n := range c.sortedNodes() {
		_, gossipAlive := alive[n.ID]
		nodes = append(nodes, placement.Node{ID: n.ID, Locality: n.Locality, Live: n.Live && gossipAlive, Replicas: counts[n.ID]})
	}
	assign, err := s.jurisdict.ChooseForShards(policy, nodes, shards)
	if err != nil {
		return nil, fmt.Errorf("%w: keyspace %q: %v", ErrCannotPlace, name, err)
	}
	countries, anywhere := s.jurisdict.PermittedCountries(policy)
	ks := &keyspaceRecord{Name: name, Policy: policy, Countries: countries, Anywhere: anywhere, CreatedUnixMs: time.Now().UnixMilli()}
	for i, r := range keys.Ranges(shards) {
		ks.Shards = append(ks.Shards, shardRecord{
			ID: c.nextShardID + uint64(i), HashStart: r.Start, HashEnd: r.End,
			Replicas: assign[i], Initial: append([]string(nil), assign[i]...),
		})
	}
	// Every node checks again when it opens a replica; this is the planner's check.
	for _, sh := range ks.Shards {
		for _, id := range sh.Replicas {
			if !ks.permits(c.nodes[id].Locality) {
				return nil, fmt.Errorf("%w: planner chose node %q outside the policy", ErrCannotPlace, id)
			}
		}
	}
	return ks, nil
}

// waitCatalogApplied waits (bounded) until every live node's catalogue
// reflects the meta-group entry at index, so that a keyspace change is seen
// cluster-wide when the admin call returns.
func (s *Server) waitCatalogApplied(ctx context.Context, index uint64) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		behind := 0
		for _, st := range s.gatherStatus(ctx) {
			if st.Node.GetLive() && st.Reachable && st.MetaAppliedIndex < index {
				behind++
			}
		}
		if behind == 0 {
			return
		}
		select {
		case <-ctx.Done():
			s.logger.Warn("catalogue change not yet applied on every live node", "index", index, "nodes_behind", behind)
			return
		case <-tick.C:
		}
	}
}

// waitShardsLed waits (bounded) until every shard of a new keyspace has a
// leader, so the keyspace is usable when creation returns.
func (s *Server) waitShardsLed(ctx context.Context, ks *keyspaceRecord) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		leaders := s.shardLeaders(ctx)
		missing := 0
		for _, sh := range ks.Shards {
			if leaders[sh.ID] == "" {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		select {
		case <-ctx.Done():
			s.logger.Warn("keyspace created but some shards have no leader yet", "keyspace", ks.Name, "shards_without_leader", missing)
			return
		case <-tick.C:
		}
	}
}
