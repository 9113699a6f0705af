package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/internal/keys"
)

// Config configures a Client. Endpoints is required, and either TLS (a
// cluster in secure mode, the default) or Insecure.
type Config struct {
	// Endpoints are gRPC addresses (host:port) of cluster nodes. The client
	// learns the rest of the cluster from them.
	Endpoints []string
	// DialTimeout bounds New's first contact with the cluster. Default 5s.
	DialTimeout time.Duration
	// TLS secures every connection with the caller's certificate, which
	// tells the cluster who calls (secure mode). Nil needs Insecure.
	TLS *tls.Config
	// Insecure connects without TLS, to a cluster in insecure mode
	// (development): nothing attests the caller. Without TLS or Insecure,
	// New fails.
	Insecure bool
	// Retry says how requests are retried. Zero value: DefaultRetryPolicy().
	Retry RetryPolicy
	// Direct sends every request to Endpoints[0] as it is, without routing to
	// shard leaders: useful to see how one node answers (for example, that a
	// node outside a keyspace's jurisdiction refuses it).
	Direct bool
	// Unary sends every single-key request as its own gRPC call instead of
	// multiplexing concurrent requests onto one stream per node (the
	// default, which costs far less CPU per request under concurrency).
	Unary bool

	// ConnectTimeout bounds each attempt to connect to a node: TCP, TLS
	// and HTTP/2 handshakes. A request for a node whose connection is
	// being set up waits for the attempt; one that has not completed in
	// time makes the node unreachable, and requests go to other nodes
	// (writes too: they were not sent). gRPC waits longer for a node that
	// keeps failing (its reconnect backoff, up to 2 minutes), but only the
	// first attempt holds requests up. Default 5s.
	ConnectTimeout time.Duration
	// KeepaliveTime: a connection on which nothing arrived from the node
	// for this long is pinged, busy or idle. At least 10s, gRPC's floor.
	// Default 10s.
	KeepaliveTime time.Duration
	// KeepaliveTimeout: a ping unanswered for this long closes the
	// connection. Reads waiting on it are retried on other nodes, writes
	// waiting on it fail with ErrOutcomeUnknown, and writes sent after go
	// to other nodes. So a node that stops answering without closing its
	// connections (paused, cut off by the network) is noticed within
	// KeepaliveTime + KeepaliveTimeout rather than at each request's
	// deadline. Nodes accept a ping every 5s by default
	// (server.Config.KeepaliveMinTime). Default 5s.
	KeepaliveTimeout time.Duration
	// Dial, if set, replaces the TCP dialer of the client's connections
	// (a proxy, fault injection in tests).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

// minKeepaliveTime is gRPC's floor for a client's keepalive pings; it
// raises shorter intervals to it.
const minKeepaliveTime = 10 * time.Second

// withDefaults returns cfg with every zero optional field at its default.
func (cfg Config) withDefaults() Config {
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.Retry.MaxAttempts == 0 {
		cfg.Retry = DefaultRetryPolicy()
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.KeepaliveTime == 0 {
		cfg.KeepaliveTime = minKeepaliveTime
	}
	if cfg.KeepaliveTimeout == 0 {
		cfg.KeepaliveTimeout = 5 * time.Second
	}
	return cfg
}

// validate reports the first field out of range, wrapping ErrInvalidArgument.
func (cfg Config) validate() error {
	switch {
	case len(cfg.Endpoints) == 0:
		return ErrNoEndpoints
	case cfg.TLS == nil && !cfg.Insecure:
		return fmt.Errorf("%w: no TLS configuration: a cluster in secure mode needs the caller's certificate (Config.TLS); "+
			"set Insecure to connect in plaintext to a cluster in insecure mode", ErrInvalidArgument)
	case cfg.TLS != nil && cfg.Insecure:
		return fmt.Errorf("%w: both TLS and Insecure set: choose one", ErrInvalidArgument)
	case cfg.DialTimeout < 0 || cfg.ConnectTimeout < 0:
		return fmt.Errorf("%w: dial timeout %v, connect timeout %v: want 0 (default) or positive",
			ErrInvalidArgument, cfg.DialTimeout, cfg.ConnectTimeout)
	case cfg.KeepaliveTime < minKeepaliveTime || cfg.KeepaliveTimeout < 0:
		return fmt.Errorf("%w: keepalive time %v, timeout %v: want at least %v (gRPC's floor) and a positive timeout",
			ErrInvalidArgument, cfg.KeepaliveTime, cfg.KeepaliveTimeout, minKeepaliveTime)
	}
	return nil
}

// RetryPolicy says how a request that failed for a transient reason (no
// leader, leader moved, node unreachable) is retried. Requests whose outcome
// may be unknown after a failure (compare-and-swap, conditional batches) are
// retried only when the node certainly did not apply them.
type RetryPolicy struct {
	// MaxAttempts per request, the first included. Default 16: with the
	// default backoff about 5 s of retries, enough to ride out an election
	// and a routing refresh after a leader dies.
	MaxAttempts int
	// InitialBackoff before the second attempt, doubled up to MaxBackoff,
	// with jitter. Defaults 10ms and 500ms.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
}

// DefaultRetryPolicy is the policy used when Config.Retry is zero.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 16, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 500 * time.Millisecond}
}

// Client talks to a Clover cluster. It caches the routing table and sends each
// request to its shard's leader, following leader hints. It is safe for
// concurrent use.
type Client struct {
	cfg Config

	connMu sync.Mutex
	conns  map[string]*grpc.ClientConn
	pipes  map[string]*pipe

	routeMu sync.RWMutex
	routes  *routingTable
	// refresh coalesces concurrent routing-table refreshes.
	refreshMu sync.Mutex
	// spread turns bounded-staleness reads from one replica to the next.
	spread atomic.Uint32
}

// New connects to the cluster and loads its routing table.
func New(ctx context.Context, cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, conns: map[string]*grpc.ClientConn{}, pipes: map[string]*pipe{}, routes: emptyRoutes()}
	if cfg.Direct {
		return c, nil
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if err := c.refreshRoutes(dctx, 0); err != nil {
		c.Close()
		return nil, fmt.Errorf("clover: reach cluster at %v: %w", cfg.Endpoints, err)
	}
	return c, nil
}

// Close closes every connection.
func (c *Client) Close() error {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	var first error
	for addr, p := range c.pipes {
		p.close()
		delete(c.pipes, addr)
	}
	for addr, cc := range c.conns {
		if err := cc.Close(); err != nil && first == nil {
			first = err
		}
		delete(c.conns, addr)
	}
	return first
}

// HTTP/2 flow-control windows of a connection to a node. Fixed windows
// turn off gRPC's bandwidth-delay estimation, which sends a PING (and the
// node a PING ack) on the first data read after each ack: with many small
// messages that is up to two extra frames, and syscalls, per request. 4 MiB
// per stream covers a 1 Gbit/s link at 30 ms round trip (Dublin to Hamar
// and back) at full rate.
const (
	streamWindow = 4 << 20
	connWindow   = 16 << 20
)

func (c *Client) conn(addr string) (*grpc.ClientConn, error) {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	if cc, ok := c.conns[addr]; ok {
		return cc, nil
	}
	creds := insecure.NewCredentials()
	if c.cfg.TLS != nil {
		creds = credentials.NewTLS(c.cfg.TLS)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds),
		grpc.WithInitialWindowSize(streamWindow), grpc.WithInitialConnWindowSize(connWindow),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(32<<20), grpc.MaxCallSendMsgSize(8<<20)),
		// gRPC never resends a call on its own (only transparently, what
		// the node did not process): the retry loop decides (sent.go).
		grpc.WithDisableRetry(),
		grpc.WithChainUnaryInterceptor(unsentInterceptor),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.DefaultConfig, MinConnectTimeout: c.cfg.ConnectTimeout}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time: c.cfg.KeepaliveTime, Timeout: c.cfg.KeepaliveTimeout, PermitWithoutStream: true,
		}),
	}
	if c.cfg.Dial != nil {
		opts = append(opts, grpc.WithContextDialer(c.cfg.Dial))
	}
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	c.conns[addr] = cc
	return cc, nil
}

// pipe returns the request stream to addr, created on first use.
func (c *Client) pipe(addr string, cc *grpc.ClientConn) *pipe {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	p, ok := c.pipes[addr]
	if !ok {
		p = newPipe(cc)
		c.pipes[addr] = p
	}
	return p
}

// request describes one call for the retry loop.
type request struct {
	keyspace string
	key      []byte // routes the call; nil = any permitted node
	// idempotent requests (reads) may be retried when the outcome of an
	// attempt is unknown. A write is not: sent again after its first
	// attempt was applied, it would apply twice (a put of value A retried
	// after another client's put of B would leave A over B, and its
	// version would not be the one readers saw).
	idempotent bool
	// follower reads may go to any replica.
	anyReplica bool
	call       func(ctx context.Context, cc *grpc.ClientConn) error
	// streamOp, when set, is the request as a stream op: unless the client
	// is Unary it travels on the node's stream and its result goes to
	// onResult.
	streamOp func() *pb.StreamOp
	onResult func(*pb.StreamResult)
}

// send makes one attempt of req at addr.
func (c *Client) send(ctx context.Context, req request, addr string, cc *grpc.ClientConn) error {
	if req.streamOp == nil || c.cfg.Unary {
		return req.call(ctx, cc)
	}
	p := c.pipe(addr, cc)
	if p.unsupported.Load() {
		return req.call(ctx, cc)
	}
	res, err := p.call(ctx, req.streamOp())
	if status.Code(err) == codes.Unimplemented {
		// A node without KV.Stream ran nothing: use unary calls with it.
		p.unsupported.Store(true)
		return req.call(ctx, cc)
	}
	if err != nil {
		return err
	}
	if err := resultError(res); err != nil {
		return err
	}
	req.onResult(res)
	return nil
}

// do runs a request with routing and retries.
func (c *Client) do(ctx context.Context, req request) error {
	var err error
	backoff := c.cfg.Retry.InitialBackoff
	refreshed, followedHint := false, false
	// hint: where a node sent a request that names no key (an admin call
	// the meta leader serves); the next attempt goes there.
	var avoid, hint string
	for attempt := 0; attempt < c.cfg.Retry.MaxAttempts; attempt++ {
		if attempt > 0 {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
		}
		addr := c.target(req, avoid, attempt)
		if hint != "" && req.key == nil && !c.cfg.Direct {
			addr, hint = hint, ""
		}
		var cc *grpc.ClientConn
		if cc, err = c.conn(addr); err != nil {
			return err
		}
		cause, maybeSent := splitSent(c.send(ctx, req, addr, cc))
		err = fromStatus(cause)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var e *Error
		if !errors.As(err, &e) {
			return err
		}
		switch {
		case e.kind == pb.ErrorDetail_KIND_NOT_LEADER:
			// Certainly not applied: safe to retry anything. Follow a new
			// hint at once the first time; while leadership moves, hints
			// can point back and forth, so later ones wait a backoff.
			if e.LeaderHint != "" && e.LeaderHint != addr {
				c.learnLeader(req.keyspace, req.key, e.LeaderHint)
				hint = e.LeaderHint
				if !followedHint {
					followedHint = true
					continue
				}
			} else {
				avoid = addr
			}
		case e.kind == pb.ErrorDetail_KIND_RESIDENCY:
			// The node we routed to may no longer serve the keyspace (its
			// policy changed and leadership is moving to a permitted node):
			// refresh, avoid that node and retry within the budget.
			if c.cfg.Direct {
				return err
			}
			avoid = addr
			c.forgetLeader(req.keyspace, req.key)
			// A call that names no key (an audit call about the keyspace)
			// goes next to a node the refusal says is permitted.
			if req.key == nil {
				for _, p := range e.PermittedEndpoints {
					if p != addr {
						hint = p
						break
					}
				}
			}
			if !refreshed {
				refreshed = true
				_ = c.refreshRoutes(ctx, 0)
				continue
			}
		case e.kind == pb.ErrorDetail_KIND_UNKNOWN_KEYSPACE:
			// The routing table or the node's catalogue may be behind.
			if refreshed || c.cfg.Direct {
				return err
			}
			refreshed = true
			if rerr := c.refreshRoutes(ctx, 0); rerr != nil {
				return err
			}
			continue
		case errors.Is(err, ErrUnavailable) && (req.idempotent || !maybeSent):
			avoid = addr
			c.forgetLeader(req.keyspace, req.key)
		case errors.Is(err, ErrUnavailable):
			c.forgetLeader(req.keyspace, req.key)
			return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
		case errors.Is(err, ErrConflict):
		case errors.Is(err, ErrResourceExhausted):
			// A node's front door refused the request before serving it:
			// certainly not applied. Back off and try again; the limit is
			// this caller's, so no other node and no new routes help.
			if err := sleepCtx(ctx, jitter(backoff)); err != nil {
				return err
			}
			backoff = min(backoff*2, c.cfg.Retry.MaxBackoff)
			continue
		default:
			return err
		}
		if !c.cfg.Direct && attempt%3 == 2 {
			_ = c.refreshRoutes(ctx, 0)
		}
		if err := sleepCtx(ctx, jitter(backoff)); err != nil {
			return err
		}
		backoff = min(backoff*2, c.cfg.Retry.MaxBackoff)
	}
	return err
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// target picks the node for a request: the shard leader when known, else a
// replica, else a configured endpoint; avoid is a node that just failed.
func (c *Client) target(req request, avoid string, attempt int) string {
	if c.cfg.Direct {
		return c.cfg.Endpoints[0]
	}
	c.routeMu.RLock()
	rt := c.routes
	c.routeMu.RUnlock()
	if req.key != nil {
		spread := 0
		if req.anyReplica {
			spread = int(c.spread.Add(1))
		}
		if addr := rt.addrFor(req.keyspace, keys.Hash(req.key), req.anyReplica, avoid, attempt, spread); addr != "" {
			return addr
		}
	} else if addr := rt.anyPermitted(req.keyspace, avoid, attempt); addr != "" {
		return addr
	}
	eps := c.cfg.Endpoints
	return eps[attempt%len(eps)]
}
