package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/identity"
)

// CallerFunc names the caller of a request for the request-rate limit:
// requests with the same key share one budget. exempt requests (traffic
// between nodes) are never counted.
type CallerFunc func(ctx context.Context, fullMethod string) (key string, exempt bool)

// RateLimiter refuses a caller's requests past its rate with
// ErrResourceExhausted: a unary call as a whole, a KV.Stream request by
// request (each refused one gets its own error result and the stream goes
// on), any other stream when it opens. Create it with NewRateLimiter and
// chain its interceptors (grpc.ChainUnaryInterceptor,
// grpc.ChainStreamInterceptor).
type RateLimiter struct {
	// Caller names each request's caller. Set it before serving; default
	// PeerCaller("").
	Caller CallerFunc

	table   *callerTable
	refused atomic.Uint64
	lastLog atomic.Int64
	logger  *slog.Logger
	// err is the refusal: the same for every request, built once.
	err       error
	streamErr *pb.StreamError
}

// rateLogInterval: refusals are logged at most once per interval.
const rateLogInterval = 10 * time.Second

// NewRateLimiter returns a limiter of rate requests a second per caller,
// in bursts of up to burst; rate must be positive and burst at least 1
// (Config.Validate checks both).
func NewRateLimiter(rate float64, burst int, logger *slog.Logger) *RateLimiter {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	err := fmt.Errorf("%w: this caller is over its request rate on this node (%g requests a second, bursts of %d); "+
		"the request was not served, retry after a backoff", ErrResourceExhausted, rate, burst)
	return &RateLimiter{Caller: PeerCaller(""), table: newCallerTable(rate, burst), logger: logger,
		err: toStatus(err), streamErr: streamError(err)}
}

// Refused counts the requests refused since NewRateLimiter.
func (l *RateLimiter) Refused() uint64 { return l.refused.Load() }

// UnaryInterceptor refuses a unary call of a caller over its rate.
func (l *RateLimiter) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		key, exempt := l.Caller(ctx, info.FullMethod)
		if exempt || l.table.allow(l.table.get(key)) {
			return handler(ctx, req)
		}
		l.noteRefused(key)
		return nil, l.err
	}
}

// StreamInterceptor limits KV.Stream request by request (see streamLimit)
// and counts any other stream as one request when it opens.
func (l *RateLimiter) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		key, exempt := l.Caller(ss.Context(), info.FullMethod)
		if exempt {
			return handler(srv, ss)
		}
		b := l.table.acquire(key)
		defer l.table.release(b)
		if info.FullMethod != pb.KV_Stream_FullMethodName {
			if !l.table.allow(b) {
				l.noteRefused(key)
				return l.err
			}
			return handler(srv, ss)
		}
		lim := &streamLimit{l: l, b: b, key: key}
		return handler(srv, &limitedStream{ServerStream: ss, ctx: context.WithValue(ss.Context(), streamLimitKey{}, lim)})
	}
}

func (l *RateLimiter) noteRefused(key string) {
	n := l.refused.Add(1)
	now := time.Now().UnixNano()
	last := l.lastLog.Load()
	if last != 0 && now-last < int64(rateLogInterval) || !l.lastLog.CompareAndSwap(last, now) {
		return
	}
	l.logger.Warn("requests refused: caller over its request rate", "caller", key, "refused_total", n)
}

// streamLimit is the rate limit of one KV.Stream's caller, carried in the
// stream's context for the handler to consult before each request.
type streamLimit struct {
	l   *RateLimiter
	b   *bucket
	key string
}

type streamLimitKey struct{}

// streamLimitOf returns the limit of a KV.Stream, nil when it has none.
func streamLimitOf(ctx context.Context) *streamLimit {
	lim, _ := ctx.Value(streamLimitKey{}).(*streamLimit)
	return lim
}

// refuse reports the error result of a request over the caller's rate,
// nil when the request may run. A nil limit allows everything.
func (s *streamLimit) refuse() *pb.StreamError {
	if s == nil || s.l.table.allow(s.b) {
		return nil
	}
	s.l.noteRefused(s.key)
	return s.l.streamErr
}

type limitedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *limitedStream) Context() context.Context { return s.ctx }

// internalPrefix starts the full method names of the Internal service,
// which only nodes call.
var internalPrefix = "/" + pb.Internal_ServiceDesc.ServiceName + "/"

// PeerCaller names callers by their connection. In secure mode a caller is
// the identity its certificate carries (identity.Identity.URI; checked
// against trustDomain unless it is ""), and a node identity is exempt; a
// verified certificate without a Clover identity names its caller by its
// SHA-256. In plaintext a caller is its IP address (an IPv6 address its
// /64). Without a node identity to go by, Internal calls and calls other
// nodes forwarded (isForwarded) are exempt: in plaintext anyone could claim
// to be a node, so there the limit guards against runaway clients, not
// against an adversary.
func PeerCaller(trustDomain string) CallerFunc {
	var cache certCallers
	return func(ctx context.Context, fullMethod string) (string, bool) {
		fromNode := isForwarded(ctx) || strings.HasPrefix(fullMethod, internalPrefix)
		p, ok := peer.FromContext(ctx)
		if !ok {
			return "unknown", fromNode
		}
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			if cs := ti.State; len(cs.VerifiedChains) > 0 && len(cs.VerifiedChains[0]) > 0 {
				c := cache.of(cs, trustDomain)
				return c.key, c.node || !c.hasIdentity && fromNode
			}
		}
		return addrCaller(p.Addr), fromNode
	}
}

// certCaller is the caller a verified certificate names.
type certCaller struct {
	key         string
	hasIdentity bool // the certificate carries a Clover identity
	node        bool // a node's
}

// certCallers caches the caller of each leaf certificate, since reading
// an identity costs microseconds and a connection's calls share the
// leaf. Past maxCertCallers entries it starts afresh.
type certCallers struct {
	m atomic.Pointer[sync.Map] // *x509.Certificate -> certCaller
	n atomic.Int64
}

const maxCertCallers = 1 << 14

// of returns the caller of cs's verified leaf.
func (c *certCallers) of(cs tls.ConnectionState, trustDomain string) certCaller {
	leaf := cs.VerifiedChains[0][0]
	m := c.m.Load()
	if m == nil {
		c.m.CompareAndSwap(nil, new(sync.Map))
		m = c.m.Load()
	}
	if v, ok := m.Load(leaf); ok {
		return v.(certCaller)
	}
	cc := callerOfCert(cs, trustDomain)
	if c.n.Add(1) > maxCertCallers {
		c.n.Store(0)
		m = new(sync.Map)
		c.m.Store(m)
	}
	m.Store(leaf, cc)
	return cc
}

// callerOfCert names the caller of a connection with a verified
// certificate: its identity's URI, or without one the certificate's
// SHA-256.
func callerOfCert(cs tls.ConnectionState, trustDomain string) certCaller {
	leaf := cs.VerifiedChains[0][0]
	var id identity.Identity
	var err error
	if trustDomain != "" {
		id, err = identity.FromConnectionState(cs, trustDomain)
	} else {
		id, err = identity.FromCertificate(leaf)
	}
	if err != nil {
		sum := sha256.Sum256(leaf.Raw)
		return certCaller{key: "cert:" + hex.EncodeToString(sum[:16])}
	}
	return certCaller{key: id.URI(), hasIdentity: true, node: id.Kind == identity.Node}
}

// addrCaller names a plaintext caller by its IP address; an IPv6 caller
// by its /64, the block one host is usually given.
func addrCaller(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		if a == nil {
			return "unknown"
		}
		host, _, err := net.SplitHostPort(a.String())
		if err != nil {
			return a.String()
		}
		return host
	}
	if v4 := tcp.IP.To4(); v4 != nil {
		return v4.String()
	}
	return tcp.IP.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
