package server

import (
	"context"
	"crypto/tls"
	"errors"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/clover-kv/clover/access"
	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/internal/errkind"
)

// maxMessageBytes bounds gRPC messages: a full batch (4 MiB of keys and
// values) plus framing.
const maxMessageBytes = 8 << 20

// HTTP/2 flow-control windows of the node's gRPC server and of its
// connections to other nodes. Fixed windows turn off gRPC's
// bandwidth-delay estimation, which costs a PING and its ack on the first
// data read after each ack: with many small messages, up to two extra
// frames (and syscalls) per request. 4 MiB per stream covers a 1 Gbit/s
// link at a 30 ms round trip at full rate.
const (
	grpcStreamWindow = 4 << 20
	grpcConnWindow   = 16 << 20
)

// peerConns caches one gRPC client connection per peer address.
type peerConns struct {
	tls *tls.Config
	// verify, if set, checks each connection's peer against the address
	// dialed (see Server.verifyNodeAt).
	verify    func(addr string, cs tls.ConnectionState) error
	keepalive keepalive.ClientParameters
	mu        sync.Mutex
	conns     map[string]*grpc.ClientConn
}

func newPeerConns(t *tls.Config, verify func(string, tls.ConnectionState) error, ka keepalive.ClientParameters) *peerConns {
	return &peerConns{tls: t, verify: verify, keepalive: ka, conns: map[string]*grpc.ClientConn{}}
}

func (p *peerConns) get(addr string) (*grpc.ClientConn, error) {
	if addr == "" {
		return nil, unavailablef("no address known for the target node")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if cc, ok := p.conns[addr]; ok {
		return cc, nil
	}
	creds := insecure.NewCredentials()
	if p.tls != nil {
		tc := p.tls.Clone()
		if v := p.verify; v != nil {
			tc.VerifyConnection = func(cs tls.ConnectionState) error { return v(addr, cs) }
		}
		creds = credentials.NewTLS(tc)
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds),
		grpc.WithInitialWindowSize(grpcStreamWindow), grpc.WithInitialConnWindowSize(grpcConnWindow),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageBytes), grpc.MaxCallSendMsgSize(maxMessageBytes)),
		// A forwarded write is resent by no one but the client, which
		// knows whether it may be (see client/sent.go).
		grpc.WithDisableRetry(), grpc.WithKeepaliveParams(p.keepalive),
		grpc.WithChainUnaryInterceptor(unsentInterceptor))
	if err != nil {
		return nil, err
	}
	p.conns[addr] = cc
	return cc, nil
}

func (p *peerConns) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for a, cc := range p.conns {
		_ = cc.Close()
		delete(p.conns, a)
	}
}

// unsentError wraps the error of a call to another node that never left
// this one: gRPC never gave it a stream on a connection (no connection to
// the node, or one not READY: calls are fail-fast).
type unsentError struct{ cause error }

func (e *unsentError) Error() string { return e.cause.Error() }
func (e *unsentError) Unwrap() error { return e.cause }

// unsentInterceptor marks the failure of a unary call that gRPC never gave
// a stream (it reports the peer of a call only once the call has one), so
// that a forwarding node can tell its client the request was certainly not
// applied.
func unsentInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	var p peer.Peer
	err := invoker(ctx, method, req, reply, cc, append(opts[:len(opts):len(opts)], grpc.Peer(&p))...)
	if err != nil && p.Addr == nil {
		return &unsentError{cause: err}
	}
	return err
}

// notForwarded reports whether err is the failure of a call that never
// reached the other node.
func notForwarded(err error) bool {
	var u *unsentError
	return errors.As(err, &u)
}

// A request forwarded by one node to another carries this metadata key, so
// it is never forwarded again (no loops, at most one hop per attempt).
const forwardedKey = "clover-forwarded"

func markForwarded(ctx context.Context) context.Context {
	if u := onBehalfOf(ctx); u != "" {
		kv := []string{forwardedKey, "1", onBehalfKey, u}
		if ci, ok := callerOf(ctx); ok && ci.caller.Kind == access.User {
			kv = append(kv, onBehalfFPKey, ci.fingerprint)
			if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
				kv = append(kv, onBehalfAddrKey, p.Addr.String())
			}
		}
		return metadata.AppendToOutgoingContext(ctx, kv...)
	}
	return metadata.AppendToOutgoingContext(ctx, forwardedKey, "1")
}

func isForwarded(ctx context.Context) bool {
	md, ok := metadata.FromIncomingContext(ctx)
	return ok && len(md.Get(forwardedKey)) > 0
}

// errorDetail extracts Clover's ErrorDetail from a gRPC status error.
func errorDetail(err error) *pb.ErrorDetail {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	return errkind.Detail(st)
}

// forward sends a request for a shard to its leader on another node. Only a
// node the keyspace permits forwards (callers check residency first), and
// only to the shard's replicas, which the policy permits too. It follows one
// leader hint.
func (s *Server) forward(ctx context.Context, shardID uint64, hint string, call func(ctx context.Context, cc *grpc.ClientConn) error) error {
	if isForwarded(ctx) {
		return notLeaderError(shardID, hint)
	}
	if hint == "" || hint == s.selfRec.GRPC {
		return notLeaderError(shardID, "")
	}
	fctx := markForwarded(ctx)
	var err error
	for hop := 0; hop < 2; hop++ {
		if !s.addrPermitted(shardID, hint) {
			// Never send a request with user data to a node outside the
			// keyspace's policy, even one that still leads the shard.
			return notLeaderError(shardID, "")
		}
		var cc *grpc.ClientConn
		if cc, err = s.peers.get(hint); err != nil {
			return err
		}
		err = call(fctx, cc)
		if notForwarded(err) && ctx.Err() == nil {
			// The leader this node knows is unreachable, and the request
			// never left: certainly not applied, as any not-leader answer.
			return notLeaderError(shardID, "")
		}
		d := errorDetail(err)
		if d == nil || d.Kind != pb.ErrorDetail_KIND_NOT_LEADER || d.LeaderHint == "" || d.LeaderHint == hint || d.LeaderHint == s.selfRec.GRPC {
			return err
		}
		hint = d.LeaderHint
	}
	return err
}

var errNoHint = errors.New("no leader hint")

// addrPermitted reports whether the node at a gRPC address may serve shard.
func (s *Server) addrPermitted(shard uint64, addr string) bool {
	for _, n := range s.catalog().nodes {
		if n.GRPCAddr == addr {
			return s.permitShardOnNode(shard, n.ID) == nil
		}
	}
	return false
}
