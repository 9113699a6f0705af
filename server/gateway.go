package server

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/clover-kv/clover/access"
	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/identity"
	"github.com/clover-kv/clover/placement"
)

// The gateway decides every request at the door, on the node that
// receives it, before anything is read or forwarded: who calls (the
// identity the caller's certificate attests), what it asks (the method's
// operation) and the keyspace's policies go to access.Decide, and a
// refusal answers PermissionDenied with the rule, counted per rule. It is
// the gRPC server's unary and stream interceptor; KV.Stream, which carries
// many requests on one stream, asks it again for each request it runs.

// methodOps is the operation of every method. A method missing here is
// refused (default deny).
var methodOps = map[string]access.Op{
	pb.KV_Put_FullMethodName:            access.Write,
	pb.KV_Get_FullMethodName:            access.Read,
	pb.KV_Delete_FullMethodName:         access.Write,
	pb.KV_CompareAndSwap_FullMethodName: access.Write,
	pb.KV_Batch_FullMethodName:          access.Write,
	pb.KV_Scan_FullMethodName:           access.Read,
	// The stream itself reads nothing; each of its requests is decided.
	pb.KV_Stream_FullMethodName: access.Route,

	pb.Admin_ClusterStatus_FullMethodName:    access.Status,
	pb.Admin_CreateKeyspace_FullMethodName:   access.Admin,
	pb.Admin_DropKeyspace_FullMethodName:     access.Admin,
	pb.Admin_ListKeyspaces_FullMethodName:    access.Status,
	pb.Admin_GetKeyspace_FullMethodName:      access.Status,
	pb.Admin_RoutingTable_FullMethodName:     access.Route,
	pb.Admin_SetPolicy_FullMethodName:        access.Admin,
	pb.Admin_KeyspaceStatus_FullMethodName:   access.Status,
	pb.Admin_PlacementVerify_FullMethodName:  access.Proof,
	pb.Admin_PlacementHistory_FullMethodName: access.Proof,
	pb.Admin_CheckReplicas_FullMethodName:    access.Proof,
	pb.Admin_Jurisdictions_FullMethodName:    access.Route,
	pb.Admin_WhoAmI_FullMethodName:           access.Route,

	pb.Internal_NodeStatus_FullMethodName:    access.Internal,
	pb.Internal_ShardScan_FullMethodName:     access.Internal,
	pb.Internal_ChangeReplica_FullMethodName: access.Internal,
	pb.Internal_ReadIndex_FullMethodName:     access.Internal,
	pb.Internal_ShardDigest_FullMethodName:   access.Internal,
	pb.Internal_AuditAppend_FullMethodName:   access.Internal,

	// The audit log: auditors and admins, never data.
	pb.Audit_Streams_FullMethodName:    access.Proof,
	pb.Audit_Checkpoint_FullMethodName: access.Proof,
	pb.Audit_Prove_FullMethodName:      access.Proof,
	pb.Audit_Entries_FullMethodName:    access.Proof,
	pb.Audit_Search_FullMethodName:     access.Proof,
	pb.Audit_Incidents_FullMethodName:  access.Proof,
}

// onBehalfKey carries, on a request one node forwards to another, the user
// the forwarding node let in: "kind;name;roles;country".
const onBehalfKey = "clover-on-behalf-of"

// gateway holds the interceptors' state.
type gateway struct {
	s *Server
	// callers caches the caller of each verified leaf certificate (one
	// per connection): parsing the identity once, not per request.
	callers sync.Map // *x509.Certificate -> callerInfo
	ncached atomic.Int64
	// refusals counts refused requests by rule.
	refusals map[access.Rule]*atomic.Uint64
}

// callerInfo is a caller and the identity behind it.
type callerInfo struct {
	caller access.Caller
	id     identity.Identity
	// fingerprint is the SHA-256 of the caller's certificate, hex.
	fingerprint string
}

func newGateway(s *Server) *gateway {
	g := &gateway{s: s, refusals: map[access.Rule]*atomic.Uint64{}}
	for _, r := range append(access.Rules(), access.RuleGuardrail) {
		g.refusals[r] = new(atomic.Uint64)
	}
	return g
}

type callerKey struct{}

// callerOf returns the caller the gateway let in for ctx's request.
func callerOf(ctx context.Context) (callerInfo, bool) {
	ci, ok := ctx.Value(callerKey{}).(callerInfo)
	return ci, ok
}

// unary is the gateway's unary interceptor.
func (g *gateway) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	ctx, err := g.admit(ctx, info.FullMethod, req)
	if err != nil {
		return nil, err
	}
	return h(ctx, req)
}

// stream is the gateway's stream interceptor.
func (g *gateway) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, err := g.admit(ss.Context(), info.FullMethod, nil)
	if err != nil {
		return err
	}
	return h(srv, &gatedStream{ServerStream: ss, ctx: ctx})
}

type gatedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *gatedStream) Context() context.Context { return s.ctx }

// admit decides method with request req (nil for a stream) and returns the
// context the handler runs with, carrying the caller.
func (g *gateway) admit(ctx context.Context, method string, req any) (context.Context, error) {
	ci, err := g.caller(ctx)
	if err != nil {
		g.s.auditAdmin(ctx, nil, "identity-refused", clipDetail(err.Error()), auditRefused, string(access.RuleDefaultDeny))
		return ctx, g.refuse(access.Decision{Rule: access.RuleDefaultDeny, Reason: err.Error()})
	}
	op, ok := methodOps[method]
	if !ok {
		return ctx, g.refuse(access.Decision{Rule: access.RuleDefaultDeny, Reason: fmt.Sprintf("unknown method %q", clipID(method))})
	}
	ks, err := g.keyspaceFor(op, req)
	if err != nil {
		return ctx, toStatus(err)
	}
	if d := access.Decide(ci.caller, op, ks); !d.Allowed {
		if name, ok := dataMethods[method]; ok && ks != nil {
			g.s.auditRefused(ctx, &ci, name, ks.Name, requestKey(req), string(d.Rule))
		}
		return ctx, g.refuse(d)
	}
	return context.WithValue(ctx, callerKey{}, ci), nil
}

// dataMethods names the KV methods in audit entries.
var dataMethods = map[string]string{
	pb.KV_Put_FullMethodName: "put", pb.KV_Get_FullMethodName: "get", pb.KV_Delete_FullMethodName: "delete",
	pb.KV_CompareAndSwap_FullMethodName: "cas", pb.KV_Batch_FullMethodName: "batch", pb.KV_Scan_FullMethodName: "scan",
}

// requestKey is the key a data request names (a batch's first), or nil.
func requestKey(req any) []byte {
	switch r := req.(type) {
	case interface{ GetKey() []byte }:
		return r.GetKey()
	case *pb.BatchRequest:
		if len(r.GetOps()) > 0 {
			return r.Ops[0].GetKey()
		}
	}
	return nil
}

// clipDetail bounds a text a caller may influence before it is recorded.
func clipDetail(s string) string {
	const max = 256
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// decideRequest decides one request of a KV.Stream, operation name of
// keyspace on key; nil allows it.
func (g *gateway) decideRequest(ctx context.Context, op access.Op, name, keyspace string, key []byte) error {
	if !g.s.cfg.Secure() {
		return nil // insecure mode: nothing to decide with
	}
	ci, ok := callerOf(ctx)
	if !ok {
		return g.refuse(access.Decision{Rule: access.RuleDefaultDeny, Reason: "no caller"})
	}
	ks, err := g.keyspaceNamed(keyspace)
	if err != nil {
		return toStatus(err)
	}
	if d := access.Decide(ci.caller, op, ks); !d.Allowed {
		g.s.auditRefused(ctx, &ci, name, keyspace, key, string(d.Rule))
		return g.refuse(d)
	}
	return nil
}

// keyspaceFor returns the keyspace a data request (or a data-bearing
// internal one) names.
func (g *gateway) keyspaceFor(op access.Op, req any) (*access.Keyspace, error) {
	named, ok := req.(interface{ GetKeyspace() string })
	if !ok || (op != access.Read && op != access.Write && op != access.Internal) {
		return nil, nil
	}
	if op == access.Internal && named.GetKeyspace() == "" {
		return nil, nil
	}
	return g.keyspaceNamed(named.GetKeyspace())
}

func (g *gateway) keyspaceNamed(name string) (*access.Keyspace, error) {
	rec, ok := g.s.catalog().keyspaces[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKeyspace, name)
	}
	ks := rec.accessKeyspace()
	return &ks, nil
}

// refuse counts a refusal and returns its status.
func (g *gateway) refuse(d access.Decision) error {
	if c, ok := g.refusals[d.Rule]; ok {
		c.Add(1)
	}
	return toStatus(permissionDenied(d))
}

// refusalCounts returns the refusals so far by rule (rules with none left out).
func (g *gateway) refusalCounts() map[string]uint64 {
	out := map[string]uint64{}
	for r, c := range g.refusals {
		if n := c.Load(); n > 0 {
			out[string(r)] = n
		}
	}
	return out
}

// caller returns who calls: in insecure mode an unattested caller, in
// secure mode the identity the verified peer certificate attests, and for
// a node forwarding a user's request that user, as the node asserts it.
func (g *gateway) caller(ctx context.Context) (callerInfo, error) {
	if !g.s.cfg.Secure() {
		return callerInfo{}, nil
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return callerInfo{}, fmt.Errorf("no peer")
	}
	tlsInfo, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(tlsInfo.State.VerifiedChains) == 0 {
		return callerInfo{}, fmt.Errorf("no verified certificate")
	}
	leaf := tlsInfo.State.VerifiedChains[0][0]
	ci, err := g.callerOfCert(leaf, tlsInfo)
	if err != nil {
		return callerInfo{}, err
	}
	if ci.caller.Kind == access.Node {
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get(onBehalfKey); len(v) == 1 {
				u, err := parseOnBehalf(v[0])
				if err != nil {
					return callerInfo{}, err
				}
				ci.caller.OnBehalfOf = &u
			}
		}
	}
	return ci, nil
}

// maxCachedCallers bounds the certificate cache; past it, it starts over.
const maxCachedCallers = 4096

func (g *gateway) callerOfCert(leaf *x509.Certificate, ti credentials.TLSInfo) (callerInfo, error) {
	if v, ok := g.callers.Load(leaf); ok {
		return v.(callerInfo), nil
	}
	id, err := g.s.peerIdentity(ti.State)
	if err != nil {
		return callerInfo{}, err
	}
	ci := callerInfo{caller: callerFromIdentity(id), id: id, fingerprint: certFingerprint(leaf.Raw)}
	if g.ncached.Add(1) > maxCachedCallers {
		g.callers.Clear()
		g.ncached.Store(0)
	}
	g.callers.Store(leaf, ci)
	return ci, nil
}

func callerFromIdentity(id identity.Identity) access.Caller {
	c := access.Caller{Name: id.Name}
	switch id.Kind {
	case identity.Node:
		c.Kind, c.Country = access.Node, id.Locality.Country
	case identity.User:
		c.Kind, c.Country = access.User, id.Country
		for _, r := range id.Roles {
			c.Roles = append(c.Roles, access.Role(r))
		}
	default:
		c.Kind = access.Kind(-1) // refused by Decide
	}
	return c
}

// onBehalfOf returns the metadata value naming the user of ctx's request,
// for a request this node forwards; "" when there is none.
func onBehalfOf(ctx context.Context) string {
	ci, ok := callerOf(ctx)
	if !ok {
		return ""
	}
	c := ci.caller
	if c.Kind == access.Node && c.OnBehalfOf != nil {
		c = *c.OnBehalfOf
	}
	if c.Kind != access.User {
		return ""
	}
	roles := make([]string, len(c.Roles))
	for i, r := range c.Roles {
		roles[i] = string(r)
	}
	return strings.Join([]string{"user", c.Name, strings.Join(roles, ","), c.Country}, ";")
}

// parseOnBehalf reads onBehalfOf's value.
func parseOnBehalf(v string) (access.Caller, error) {
	parts := strings.Split(v, ";")
	if len(parts) != 4 || parts[0] != "user" || !identity.ValidName(parts[1]) {
		return access.Caller{}, fmt.Errorf("malformed %s", onBehalfKey)
	}
	c := access.Caller{Kind: access.User, Name: parts[1], Country: parts[3]}
	if parts[2] != "" {
		rs, err := identity.ParseRoles(parts[2])
		if err != nil {
			return access.Caller{}, fmt.Errorf("malformed %s: %v", onBehalfKey, err)
		}
		for _, r := range rs {
			c.Roles = append(c.Roles, access.Role(r))
		}
	}
	if c.Country != "" && !placement.IsCountry(c.Country) {
		return access.Caller{}, fmt.Errorf("malformed %s: country", onBehalfKey)
	}
	return c, nil
}

// refusalCounts is the node's refusals by rule, the request-rate limit's
// included (as "request-rate").
func (s *Server) refusalCounts() map[string]uint64 {
	out := s.gate.refusalCounts()
	if s.rate != nil {
		if n := s.rate.Refused(); n > 0 {
			out["request-rate"] = n
		}
	}
	return out
}
