package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/identity"
	"github.com/clover-kv/clover/placement"
)

// The meta leader records a gossip member, adds it to the meta group and
// gives it replicas only once it has checked the member's claims: gossip
// metadata is whatever a member says of itself, and of others. The check
// dials the gRPC address the member claims and asks the node there who it
// is (Internal.NodeStatus, identify): its answer must name the same ID,
// locality and addresses, and in secure mode the certificate presenting
// itself there must attest the same ID and locality. A member whose claims
// fail is ignored and logged, and checked again after a while: so a node
// showing another node's certificate, a member whose metadata disagrees
// with its certificate, or one advertising a live node's name with
// addresses of its own, is never recorded and never gets a replica, and a
// live node's recorded addresses are never rewritten by someone else.

// attestRetry is how long a failed check of a member's claims stands
// before the member is checked again.
const attestRetry = 5 * time.Second

// attestTimeout bounds one check.
const attestTimeout = 3 * time.Second

// attestations are the meta leader's checks of gossip members.
type attestations struct {
	mu     sync.Mutex
	ok     map[string]attested // member ID -> claims that passed
	failed map[string]attested // member ID -> claims that failed, until retry
}

type attested struct {
	claims gossipMeta
	at     time.Time
	err    error
}

// at returns the node attested at addr.
func (a *attestations) at(k addrKind, addr string) (identity.Identity, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, v := range a.ok {
		c := v.claims
		if (k == raftAddrKind && c.Raft == addr) || (k == grpcAddrKind && c.GRPC == addr) {
			return identity.Identity{Kind: identity.Node, Name: c.ID, Locality: c.Locality}, true
		}
	}
	return identity.Identity{}, false
}

// attestedMembers returns the members whose current claims passed a check,
// checking (in parallel, each bounded) those not checked yet or whose
// claims changed. This node's own entry is taken as it is.
func (s *Server) attestedMembers(ctx context.Context, members map[string]gossipMeta) map[string]gossipMeta {
	a := &s.attest
	now := time.Now()
	out := map[string]gossipMeta{}
	var check []gossipMeta
	a.mu.Lock()
	if a.ok == nil {
		a.ok, a.failed = map[string]attested{}, map[string]attested{}
	}
	for id, m := range members {
		switch {
		case id == s.cfg.NodeID && m == s.selfClaims():
			out[id] = m
		case a.ok[id].claims == m:
			out[id] = m
		case a.failed[id].claims == m && now.Sub(a.failed[id].at) < attestRetry:
		default:
			check = append(check, m)
		}
	}
	for id := range a.ok {
		if _, ok := members[id]; !ok {
			delete(a.ok, id)
		}
	}
	for id := range a.failed {
		if _, ok := members[id]; !ok {
			delete(a.failed, id)
		}
	}
	a.mu.Unlock()
	sort.Slice(check, func(i, j int) bool { return check[i].ID < check[j].ID })
	errs := make([]error, len(check))
	var wg sync.WaitGroup
	for i, m := range check {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.checkClaims(ctx, m)
		}()
	}
	wg.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	c := s.catalog()
	for i, m := range check {
		if errs[i] == nil {
			delete(a.failed, m.ID)
			a.ok[m.ID] = attested{claims: m, at: time.Now()}
			out[m.ID] = m
			continue
		}
		if ctx.Err() == nil && (a.failed[m.ID].claims != m || a.failed[m.ID].err == nil) {
			s.logger.Warn("meta: gossip member's claims do not hold; ignoring them", "member", clipID(m.ID),
				"locality", m.Locality.String(), "grpc", m.GRPC, "raft", m.Raft, "err", errs[i])
		}
		a.failed[m.ID] = attested{claims: m, at: time.Now(), err: errs[i]}
		// Someone else's claims on a recorded node's name do not make
		// the node itself gone: keep it while its record still checks out.
		if rec, ok := c.nodes[m.ID]; ok {
			rc := gossipMeta{ID: rec.ID, Locality: rec.Locality, GRPC: rec.GRPCAddr, Raft: rec.RaftAddr, Gossip: rec.GossipAddr}
			if a.ok[m.ID].claims == rc {
				out[m.ID] = rc
			}
		}
	}
	return out
}

// selfClaims is what this node gossips of itself.
func (s *Server) selfClaims() gossipMeta { return s.selfRec }

var errClaims = errors.New("claims do not hold")

// checkClaims asks the node at m's claimed gRPC address who it is.
func (s *Server) checkClaims(ctx context.Context, m gossipMeta) error {
	ctx, cancel := context.WithTimeout(ctx, attestTimeout)
	defer cancel()
	creds := insecure.NewCredentials()
	var seen identity.Identity
	if s.cfg.Secure() {
		tc := s.cfg.ClientTLS.Clone()
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			id, err := s.peerIdentity(cs)
			if err != nil {
				return err
			}
			seen = id
			return nil
		}
		creds = credentials.NewTLS(tc)
	}
	cc, err := grpc.NewClient(m.GRPC, grpc.WithTransportCredentials(creds))
	if err != nil {
		return fmt.Errorf("%w: grpc address %q: %v", errClaims, m.GRPC, err)
	}
	defer cc.Close()
	resp, err := pb.NewInternalClient(cc).NodeStatus(ctx, &pb.NodeStatusRequest{Identify: true})
	if err != nil {
		return fmt.Errorf("%w: asking the node at %s: %v", errClaims, m.GRPC, err)
	}
	if s.cfg.Secure() {
		switch {
		case seen.Kind != identity.Node:
			return fmt.Errorf("%w: the certificate at %s is not a node's", errClaims, m.GRPC)
		case seen.Name != m.ID || seen.Locality != m.Locality:
			return fmt.Errorf("%w: gossip says node %s at %s, the certificate at %s attests node %s at %s",
				errClaims, clipID(m.ID), m.Locality, m.GRPC, seen.Name, seen.Locality)
		}
	}
	n := resp.GetStatus().GetNode()
	loc := placement.Locality{Country: n.GetLocality().GetCountry(), Region: n.GetLocality().GetRegion(), Zone: n.GetLocality().GetZone()}
	told := gossipMeta{ID: n.GetId(), Locality: loc, GRPC: n.GetGrpcAddr(), Raft: n.GetRaftAddr(), Gossip: n.GetGossipAddr()}
	if told != m {
		return fmt.Errorf("%w: gossip says %s, the node at %s says %s", errClaims, describeClaims(m), m.GRPC, describeClaims(told))
	}
	return nil
}

func describeClaims(m gossipMeta) string {
	return fmt.Sprintf("node %s at %s (grpc %s, raft %s, gossip %s)", clipID(m.ID), m.Locality, m.GRPC, m.Raft, m.Gossip)
}

// clipID bounds a node ID taken from gossip for a log line.
func clipID(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
