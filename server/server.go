package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/internal/frontdoor"
	"github.com/clover-kv/clover/internal/raftmux"
	"github.com/clover-kv/clover/placement"
	"github.com/clover-kv/clover/raftfsm"
)

// Server is one Clover node. Create it with New, run it with Start, wait for
// Ready, stop it with Close.
type Server struct {
	cfg       Config
	logger    *slog.Logger
	jurisdict *placement.Catalogue

	db     *pebble.DB
	mux    *raftmux.Mux
	grpc   *grpc.Server
	grpcLn net.Listener
	gossip *membership
	peers  *peerConns
	// departures: peers that announced they leave, and whether this node
	// is closing (see departures.go).
	departures *departures

	meta *replica
	ctrl *controller
	// metaDown: when gossip last stopped seeing each meta member (meta loop only).
	metaDown map[string]time.Time
	// gate decides every request at the door (gateway.go); rate bounds
	// each caller's requests (nil: no limit).
	gate *gateway
	rate *RateLimiter
	// audit records requests and admin acts in the audit streams.
	audit *auditor
	// attest: the meta leader's checks of gossip members' claims.
	attest attestations
	// peerLog rate-limits the log lines of refused peers.
	peerLog logLimiter
	cat     atomic.Pointer[catalog]
	catCh   chan struct{} // signalled on every catalogue change
	selfRec gossipMeta

	mu       sync.RWMutex
	replicas map[uint64]*replica
	// damaged: shards whose replica on this node failed verification (see
	// damage.go); the node does not run them.
	damaged map[uint64]error
	// verified: shards whose records New already checked; opening them
	// need not read them again.
	verified map[uint64]bool

	failed   chan struct{} // closed by fail
	failErr  error
	failOnce sync.Once

	// writesInFlight counts client write commands proposed on this node
	// and not yet answered, across all shards (see writesBusy).
	writesInFlight atomic.Int64
	// diskFree: bytes available in the data directory's file system, as
	// last read (diskLoop); -1 when unknown.
	diskFree atomic.Int64

	ready     chan struct{}
	readyOnce sync.Once
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// identityFile records the node's ID and locality at first start: a node
// that holds replicas must not silently change its jurisdiction.
const identityFile = "identity.json"

// New validates cfg and opens the node's storage. It starts nothing.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg, err := cfg.WithAttestedIdentity()
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cat, _ := cfg.catalogue()
	s := &Server{
		cfg:       cfg,
		logger:    cfg.Logger.With("node", cfg.NodeID),
		jurisdict: cat,
		catCh:     make(chan struct{}, 1),
		replicas:  map[uint64]*replica{},
		damaged:   map[uint64]error{},
		verified:  map[uint64]bool{},
		failed:    make(chan struct{}),
		ready:     make(chan struct{}),

		departures: newDepartures(),
	}
	s.cat.Store(emptyCatalog())
	s.ctrl = newController(s)
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if err := checkIdentity(cfg); err != nil {
		return nil, err
	}
	window := cfg.Raft.GroupCommitWindow
	if window == 0 {
		window = -1 // off
	}
	db, err := raftfsm.OpenDB(filepath.Join(cfg.DataDir, "pebble"), raftfsm.DBOptions{
		Logger:            s.logger.With("component", "pebble"),
		GroupCommitWindow: window,
		Busy:              s.writesBusy,
		CacheSize:         cfg.CacheSize,
	})
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w%s", cfg.DataDir, err, damageHint(err))
	}
	// Read every stored record once before serving anything (see damage.go).
	verified, damaged, err := raftfsm.VerifyStore(db)
	if err == nil {
		if merr, ok := damaged[metaShardID]; ok {
			err = fmt.Errorf("meta group: %w", merr)
		}
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store in %s: %w%s", cfg.DataDir, err, damageHint(err))
	}
	for _, id := range verified {
		s.verified[id] = true
	}
	for id, err := range damaged {
		s.markDamaged(id, err)
	}
	s.db = db
	return s, nil
}

// writesBusy reports whether the node has two or more client writes in
// flight: its Raft log syncs then wait for the group commit window.
func (s *Server) writesBusy() bool {
	return s.writesInFlight.Load() >= 2
}

func checkIdentity(cfg Config) error {
	path := filepath.Join(cfg.DataDir, identityFile)
	want := gossipMeta{ID: cfg.NodeID, Locality: cfg.Locality}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if !cfg.Bootstrap && len(cfg.Join) == 0 {
			return fmt.Errorf("%w: node has no state and nothing to join (data dir %s): give --join with a peer's gossip address, "+
				"or --bootstrap to found a new cluster", ErrInvalidConfig, cfg.DataDir)
		}
		return os.WriteFile(path, mustJSON(want), 0o640)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	var have gossipMeta
	if err := json.Unmarshal(b, &have); err != nil {
		return fmt.Errorf("%s is corrupt: %w", path, err)
	}
	if have.ID != want.ID || have.Locality != want.Locality {
		return fmt.Errorf("%w: data dir %s belongs to node %q at %s; this node is %q at %s "+
			"(a node's identity and locality cannot change: use a new data dir)",
			ErrInvalidConfig, cfg.DataDir, have.ID, have.Locality, want.ID, want.Locality)
	}
	return nil
}

// Start opens the listeners, joins or founds the cluster and starts serving.
// It returns once the node is listening; Ready tells when it has joined.
func (s *Server) Start(ctx context.Context) error {
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.start(); err != nil {
		s.Close()
		return err
	}
	return nil
}

// heartbeatAlignDivisor sets the raftmux heartbeat gate to a fiftieth of the
// heartbeat timeout (20 ms of the default 1 s). Raft heartbeats every tenth
// to fifth of the timeout and the leader lease (500 ms) must outlast the
// longest gap, so the gate adds at most a tenth to it.
const heartbeatAlignDivisor = 50

func (s *Server) start() error {
	cfg := &s.cfg
	raftLn, err := net.Listen("tcp", cfg.ListenRaft)
	if err != nil {
		return fmt.Errorf("listen raft %s: %w", cfg.ListenRaft, err)
	}
	var adv net.Addr
	if cfg.AdvertiseRaft != "" {
		if adv, err = net.ResolveTCPAddr("tcp", cfg.AdvertiseRaft); err != nil {
			return fmt.Errorf("advertise raft %q: %w", cfg.AdvertiseRaft, err)
		}
	}
	raftLn = frontdoor.Wrap(raftLn, frontdoor.Config{Name: "raft", MaxConns: cfg.MaxConnections,
		FirstByteTimeout: raftmux.DefaultHandshakeTimeout, Logger: s.logger})
	// In secure mode every listener and dialer checks the peer's
	// certificate (peerverify.go): Raft and gossip speak only with nodes,
	// and a dial reaches only the node expected at the address.
	raftTLS, grpcTLS, gossipTLS := cfg.ServerTLS, cfg.ServerTLS, cfg.ServerTLS
	var raftVerify, grpcVerify, gossipVerify func(string, tls.ConnectionState) error
	if cfg.Secure() {
		raftTLS, grpcTLS = s.serverTLS(s.verifyNodePeer("raft")), s.serverTLS(s.verifyAnyPeer)
		gossipTLS = s.serverTLS(s.verifyNodePeer("gossip"))
		raftVerify, grpcVerify = s.verifyNodeAt(raftAddrKind), s.verifyNodeAt(grpcAddrKind)
		gossipOnly := s.verifyNodePeer("gossip")
		gossipVerify = func(_ string, cs tls.ConnectionState) error { return gossipOnly(cs) }
	}
	s.mux = raftmux.New(raftLn, raftmux.Config{
		ServerTLS: raftTLS, ClientTLS: cfg.ClientTLS, VerifyDial: raftVerify, Dial: cfg.RaftDial,
		Advertise: adv, Logger: s.logger.With("component", "raftmux"),
		HeartbeatAlign: cfg.Raft.HeartbeatTimeout / heartbeatAlignDivisor,
	})
	grpcLn, err := net.Listen("tcp", cfg.ListenGRPC)
	if err != nil {
		return fmt.Errorf("listen grpc %s: %w", cfg.ListenGRPC, err)
	}
	s.grpcLn = frontdoor.Wrap(grpcLn, frontdoor.Config{Name: "grpc", MaxConns: cfg.MaxConnections,
		FirstByteTimeout: cfg.HandshakeTimeout, TCPUserTimeout: cfg.KeepaliveTimeout, Logger: s.logger})
	s.selfRec = gossipMeta{
		ID: cfg.NodeID, Locality: cfg.Locality,
		GRPC: orAddr(cfg.AdvertiseGRPC, s.grpcLn.Addr()),
		Raft: s.mux.Addr().String(),
	}
	s.peers = newPeerConns(cfg.ClientTLS, grpcVerify, keepalive.ClientParameters{
		Time: cfg.KeepaliveTime, Timeout: cfg.KeepaliveTimeout, PermitWithoutStream: true,
	})

	opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(maxMessageBytes), grpc.MaxSendMsgSize(maxMessageBytes),
		grpc.InitialWindowSize(grpcStreamWindow), grpc.InitialConnWindowSize(grpcConnWindow),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: cfg.KeepaliveTime, Timeout: cfg.KeepaliveTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: cfg.KeepaliveMinTime, PermitWithoutStream: true}),
		grpc.ConnectionTimeout(cfg.HandshakeTimeout), grpc.MaxConcurrentStreams(cfg.MaxConcurrentStreams)}
	if cfg.RequestRate > 0 {
		rl := NewRateLimiter(cfg.RequestRate, cfg.RequestBurst, s.logger)
		rl.Caller = PeerCaller(cfg.TrustDomain)
		s.rate = rl
		opts = append(opts, grpc.ChainUnaryInterceptor(rl.UnaryInterceptor()), grpc.ChainStreamInterceptor(rl.StreamInterceptor()))
	}
	if cfg.ServerTLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(grpcTLS)))
	}
	s.gate = newGateway(s)
	if s.audit, err = newAuditor(s); err != nil {
		return err
	}
	opts = append(opts, grpc.ChainUnaryInterceptor(s.gate.unary), grpc.ChainStreamInterceptor(s.gate.stream))
	s.grpc = grpc.NewServer(opts...)
	pb.RegisterKVServer(s.grpc, &kvService{s: s})
	pb.RegisterAdminServer(s.grpc, &adminService{s: s})
	pb.RegisterInternalServer(s.grpc, &internalService{s: s})
	pb.RegisterAuditServer(s.grpc, &auditService{s: s})
	if err := s.openMeta(); err != nil {
		return err
	}
	s.gossip, err = startMembership(cfg, s.selfRec, s.departures, gossipTLS, gossipVerify)
	if err != nil {
		return err
	}
	s.selfRec.Gossip = s.gossip.selfGossipAddr()
	s.goLoop(s.gossipJoinLoop)
	s.goLoop(s.metaLoop)
	s.goLoop(s.guardrailLoop)
	s.goLoop(s.ctrl.loop)
	s.goLoop(s.replicaLoop)
	s.readDiskFree()
	s.goLoop(s.diskLoop)
	// Serve only once the meta group and gossip exist: every handler uses them.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.grpc.Serve(s.grpcLn); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.logger.Error("grpc serve", "err", err)
		}
	}()
	s.logger.Info("node started", "locality", cfg.Locality.String(), "grpc", s.selfRec.GRPC,
		"raft", s.selfRec.Raft, "gossip", s.selfRec.Gossip, "secure", cfg.Secure())
	if !cfg.Secure() {
		s.logger.Warn("insecure mode: no certificates, so this node's locality and its callers are unattested; every caller may do everything")
	} else {
		s.logger.Info("secure mode: identity and locality attested by the certificate", "cluster", cfg.TrustDomain, "node", cfg.NodeID)
	}
	return nil
}

func orAddr(s string, a net.Addr) string {
	if s != "" {
		return s
	}
	return a.String()
}

func (s *Server) goLoop(f func(ctx context.Context)) {
	s.wg.Add(1)
	go func() { defer s.wg.Done(); f(s.ctx) }()
}

// openMeta opens this node's member of the meta group, bootstrapping a new
// cluster when asked to and there is no state yet.
func (s *Server) openMeta() error {
	var initial []raft.Server
	if s.cfg.Bootstrap {
		initial = []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(s.cfg.NodeID), Address: raft.ServerAddress(s.selfRec.Raft)}}
	}
	m, err := s.openReplica(metaShardID, initial, func(r *replica) { s.reloadCatalogFrom(r.fsm) })
	if err != nil {
		return fmt.Errorf("open meta group: %w", err)
	}
	s.meta = m
	if !s.cfg.Bootstrap && len(s.cfg.Join) == 0 {
		if m.raft.LastIndex() == 0 {
			return fmt.Errorf("%w: node has no state and nothing to join: give --join with a peer's gossip address, "+
				"or --bootstrap to found a new cluster", ErrInvalidConfig)
		}
	}
	s.reloadCatalog()
	return nil
}

// reloadCatalog rebuilds the in-memory catalogue from the meta group's state.
func (s *Server) reloadCatalog() { s.reloadCatalogFrom(s.meta.fsm) }

func (s *Server) reloadCatalogFrom(fsm *raftfsm.FSM) {
	c, err := loadCatalog(fsm)
	if err != nil {
		s.logger.Error("catalogue unreadable", "err", err)
		return
	}
	s.cat.Store(c)
	if n, ok := c.nodes[s.cfg.NodeID]; ok && n.Live {
		s.readyOnce.Do(func() { close(s.ready) })
	}
	select {
	case s.catCh <- struct{}{}:
	default:
	}
	s.ctrl.poke()
}

// catalog returns the latest catalogue view.
func (s *Server) catalog() *catalog { return s.cat.Load() }

// Ready is closed once the node is a recorded, live member of the cluster.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// NodeID returns the node's ID.
func (s *Server) NodeID() string { return s.cfg.NodeID }

// GRPCAddr is the address clients use to reach this node.
func (s *Server) GRPCAddr() string { return s.selfRec.GRPC }

// GossipAddr is the address other nodes join through.
func (s *Server) GossipAddr() string { return s.selfRec.Gossip }

// RaftAddr is the node's Raft listener address.
func (s *Server) RaftAddr() string { return s.selfRec.Raft }

// Close leaves the cluster in order and closes storage; data stays. It
// stops the node's background loops, tells its peers through gossip that
// it is leaving, hands over the leaderships it holds (at most
// Config.HandoverTimeout), stops serving, leaves gossip, and only then
// stops its Raft groups. Peers log the failures to reach a node that left
// below WARN, and the node logs none of its own shutdown as errors.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.departures.closing.Store(true)
		if s.cancel != nil {
			s.cancel() // nothing moves a leadership back here or opens a replica
		}
		s.leave()
		if s.grpc != nil {
			stopped := make(chan struct{})
			go func() { s.grpc.GracefulStop(); close(stopped) }()
			select {
			case <-stopped:
			case <-time.After(2 * time.Second):
				s.grpc.Stop()
			}
		}
		if s.gossip != nil {
			s.gossip.close()
		}
		s.wg.Wait()
		s.mu.Lock()
		for id, r := range s.replicas {
			r.close()
			delete(s.replicas, id)
		}
		s.mu.Unlock()
		if s.meta != nil {
			s.meta.close()
		}
		if s.mux != nil {
			_ = s.mux.Close()
		}
		if s.peers != nil {
			s.peers.close()
		}
		if s.db != nil {
			s.closeErr = s.db.Close()
		}
	})
	return s.closeErr
}

// replica returns this node's running replica of a shard, or nil.
func (s *Server) replica(id uint64) *replica {
	if id == metaShardID {
		return s.meta
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.replicas[id]
}

// grpcAddrOf returns a node's gRPC address from the catalogue, or "".
func (s *Server) grpcAddrOf(nodeID string) string {
	if n, ok := s.catalog().nodes[nodeID]; ok {
		return n.GRPCAddr
	}
	return ""
}

// permitShardHere reports whether this node may hold the shard now.
func (s *Server) permitShardHere(shard uint64) error {
	if shard == metaShardID {
		return nil
	}
	ref, ok := s.catalog().shards[shard]
	if !ok {
		return fmt.Errorf("%w: shard %d is not in this node's catalogue", ErrResidency, shard)
	}
	if !ref.ks.permits(s.cfg.Locality) {
		return fmt.Errorf("%w: keyspace %q may not be held at %s", ErrResidency, ref.ks.Name, s.cfg.Locality)
	}
	return nil
}

// permitShardOnNode reports whether a node may hold and serve the shard.
func (s *Server) permitShardOnNode(shard uint64, nodeID string) error {
	if shard == metaShardID {
		return nil
	}
	c := s.catalog()
	n, ok := c.nodes[nodeID]
	if !ok {
		return fmt.Errorf("%w: node %q is not recorded", ErrResidency, nodeID)
	}
	ref, ok := c.shards[shard]
	if !ok {
		return fmt.Errorf("%w: shard %d is not in the catalogue", ErrResidency, shard)
	}
	if !ref.ks.permits(n.Locality) {
		return fmt.Errorf("%w: keyspace %q may not be held by node %q at %s", ErrResidency, ref.ks.Name, n.ID, n.Locality)
	}
	return nil
}

// permitShardOnRaftAddr reports whether the node at a Raft address may hold
// the shard: the transport asks before it ships entries or snapshots.
func (s *Server) permitShardOnRaftAddr(shard uint64, addr string) error {
	if shard == metaShardID {
		return nil
	}
	n, ok := s.catalog().byRaftAddr[addr]
	if !ok {
		return fmt.Errorf("%w: no node is recorded at %s", ErrResidency, addr)
	}
	return s.permitShardOnNode(shard, n.ID)
}
