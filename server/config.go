package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"

	"github.com/clover-kv/clover/placement"
	"github.com/clover-kv/clover/raftfsm"
)

// Config is everything a node needs. Build it with DefaultConfig and override
// fields; Validate checks fields against each other without changing them.
type Config struct {
	// NodeID names the node in the cluster; stable across restarts.
	// 1-64 characters of [a-z0-9-_.]. Required.
	NodeID string
	// Locality of the node. Its country decides which keyspaces it may hold.
	// Required.
	Locality placement.Locality
	// DataDir holds the node's Pebble store and Raft snapshots. Required.
	DataDir string

	// ListenGRPC, ListenRaft and ListenGossip are host:port listen addresses.
	// Port 0 picks a free port (tests). Defaults: 127.0.0.1:7400, :7500, :7600.
	ListenGRPC   string
	ListenRaft   string
	ListenGossip string
	// Advertise* are the addresses other nodes and clients use; empty = the
	// listener's actual address. Each is host:port; the node gossips them
	// with its ID and locality in at most 512 bytes, which bounds their length.
	AdvertiseGRPC   string
	AdvertiseRaft   string
	AdvertiseGossip string

	// Join lists gossip addresses of existing nodes. A node with no Raft state
	// and no Bootstrap needs at least one. Retried in the background.
	Join []string
	// Bootstrap makes this node found a new cluster (the meta group) when it
	// has no state yet. Give it to exactly one node, the first time.
	Bootstrap bool

	// Jurisdictions are operator-defined sets of countries, added to the
	// built-in catalogue (EU, EEA). Name -> ISO 3166-1 alpha-2 codes.
	Jurisdictions map[string][]string

	// PersonalDataJurisdiction is the cluster's personal-data guardrail: a
	// jurisdiction of the catalogue (built-in or in Jurisdictions), ISO
	// 3166-1 alpha-2 country codes, or both, comma-separated, in any case
	// ("EEA", "IE,NO"). No personal keyspace may then be given a residency
	// or caller jurisdictions outside those countries, by any admin request.
	// The node that founds the cluster (Bootstrap) records it in the meta
	// group, once, as soon as it leads the group (empty or not); it never
	// changes afterwards. Any node's value that disagrees with the record,
	// the founder's on a later start included, is logged as a warning and
	// ignored. Empty: no guardrail.
	PersonalDataJurisdiction string

	// MetaVoters is how many nodes vote in the meta group (the rest follow as
	// non-voters). Default 3.
	MetaVoters int

	// DeadNodeGrace: a node unreachable for longer than this is dead; the
	// placement controller rebuilds its replicas on permitted nodes.
	// Default 30s.
	DeadNodeGrace time.Duration
	// ReconcileInterval: how often the placement controller runs a round
	// (it also runs on membership and catalogue changes). Default 1s.
	ReconcileInterval time.Duration
	// MaxMovesInFlight bounds shards with a membership change in flight
	// cluster-wide. Default 4.
	MaxMovesInFlight int
	// LeaderBalanceInterval is the least time between two moves of one
	// shard's leadership for balance: after a transfer, an election, or
	// the controller first seeing the shard, balance leaves its leader
	// where it is this long. A leader that must move (outside the policy,
	// on a dead or draining node, outside the preferred region) moves at
	// once. Default 10s.
	LeaderBalanceInterval time.Duration

	// HandoverTimeout bounds how long Close waits for the leaderships this
	// node holds to move to other voters before it stops its Raft groups; a
	// shard whose hand-over has not finished by then elects a leader once
	// its followers time out. 0 hands nothing over. Default 5s.
	HandoverTimeout time.Duration

	// AuditTimeout bounds how long a request of an audited keyspace waits
	// for its audit entry to commit before it fails with Unavailable
	// (rule "audit"). Default 2s.
	AuditTimeout time.Duration
	// AuditVolumeWindow and AuditVolumeThreshold: more allowed requests
	// than the threshold by one caller on one keyspace within one window
	// is an incident. Defaults 1m and 1000.
	AuditVolumeWindow    time.Duration
	AuditVolumeThreshold int

	// MinFreeDisk is the free-space reserve of the data directory's file
	// system, in bytes: below it the node refuses new writes on the shards
	// it leads (ErrDiskFull; reads go on) so that Raft and Pebble never
	// meet a full disk. 0 turns the check off. Default 64 MiB.
	MinFreeDisk int64

	// CacheSize is the store's block cache in bytes: the data, index and
	// filter blocks kept in memory for reads. It fills only as blocks are
	// read. Default 256 MiB.
	CacheSize int64

	// Raft tunes every Raft group of the node.
	Raft RaftConfig

	// KeepaliveTime: the node pings a gRPC connection on which nothing
	// arrived for this long, busy or idle: a client's connection to it,
	// and its own connections to other nodes (requests it forwards). At
	// least 10s, gRPC's floor for a connection's pings. Default 10s.
	KeepaliveTime time.Duration
	// KeepaliveTimeout: a ping unanswered for this long closes the
	// connection, so a vanished client's streams end and a request
	// forwarded to a silent node fails instead of waiting for its
	// deadline. Default 5s.
	KeepaliveTimeout time.Duration
	// KeepaliveMinTime is the shortest interval between a client's pings
	// the node accepts; a client pinging more often is disconnected (gRPC's
	// "too many pings"). At most KeepaliveTime, so nodes accept each
	// other's pings; the default, 5s, is below the floor of gRPC clients
	// (10s), so it accepts every one.
	KeepaliveMinTime time.Duration

	// Front-door limits, so that one client cannot exhaust the node (see
	// docs/OPERATIONS.md, "Front-door limits").
	//
	// MaxConnections bounds the connections open at once on each of the
	// gRPC, Raft and gossip listeners (in plaintext mode memberlist's own
	// gossip listener has no such bound). A connection that has sent
	// nothing yet gives its place to a newer one; when every open
	// connection has spoken, a new one is closed at once. Default 4096.
	MaxConnections int
	// HandshakeTimeout bounds how long a connection to the gRPC listener
	// may take to send its first bytes and to complete its TLS and HTTP/2
	// handshakes; it is then closed. Default 10s.
	HandshakeTimeout time.Duration
	// MaxConcurrentStreams bounds the gRPC streams (calls in progress) of
	// one connection; a client past it waits for one to end. Default 1024.
	MaxConcurrentStreams uint32
	// RequestRate is how many requests a second one caller may send this
	// node, sustained; RequestBurst how many it may send at once after
	// being idle (a token bucket per caller). A caller is a certificate
	// identity in secure mode, an IP address (an IPv6 /64) in plaintext.
	// Requests over the rate are refused with ErrResourceExhausted (each
	// request of a stream on its own); requests from other nodes are never
	// counted. RequestRate 0 turns the limit off. Defaults 100000 and
	// 200000.
	RequestRate  float64
	RequestBurst int

	// TLS for the gRPC, Raft and gossip listeners and dialers: secure
	// mode, in which the node's ID and locality come from the certificate
	// of ServerTLS (see WithAttestedIdentity) and every peer's certificate
	// is checked. Nil means plaintext, which needs Insecure.
	ServerTLS *tls.Config
	ClientTLS *tls.Config
	// TrustDomain is the cluster's name as its CA certificate carries it
	// (spiffe://<trust-domain>); required in secure mode.
	TrustDomain string
	// Insecure runs the node without certificates (development): nothing
	// attests localities or callers, and the node says so at start and in
	// cluster status. Without it a node without certificates refuses to
	// start.
	Insecure bool

	// RaftDial, if set, replaces the TCP dialer of Raft traffic (fault injection).
	RaftDial func(ctx context.Context, addr string) (net.Conn, error)

	// Logger receives the node's logs, including hashicorp/raft's and
	// memberlist's. Default: slog.Default().
	Logger *slog.Logger
}

// RaftConfig tunes the node's Raft groups.
type RaftConfig struct {
	// HeartbeatTimeout: a follower without contact for this long starts an
	// election; the leader heartbeats every tenth of it. Default 1s.
	HeartbeatTimeout time.Duration
	// ElectionTimeout: a candidate without a result for this long retries. Default 1s.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout: a leader without quorum contact for this long steps down. Default 500ms.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout: how long a leader waits before sending an empty append so
	// followers learn the commit index. Every follower of every group gets
	// one each CommitTimeout, written to or not, so a short one is much of
	// what an idle group costs. Followers do not wait for it after a write:
	// a leader whose shard goes idle proposes an empty tail entry, and that
	// append carries the commit index. Default 1s.
	CommitTimeout time.Duration
	// MaxAppendEntries per replication RPC (1..1024). Default 256.
	MaxAppendEntries int
	// SnapshotThreshold: log entries since the last snapshot before a new one. Default 16384.
	SnapshotThreshold uint64
	// SnapshotInterval: how often the threshold is checked. Default 30s.
	SnapshotInterval time.Duration
	// TrailingLogs kept after a snapshot, so slow followers catch up from the log. Default 10240.
	TrailingLogs uint64
	// ApplyTimeout bounds how long a proposal waits to enter the Raft log. Default 5s.
	ApplyTimeout time.Duration
	// GroupCommitWindow: while a node has two or more client writes in
	// flight, each fsync of its Raft log waits this long after the previous
	// one, so that the appends of many shards share one fsync. A lone writer
	// never waits. 0 turns it off; at most 100ms. Default 1ms.
	GroupCommitWindow time.Duration
}

// defaultAuditTimeout is Config.AuditTimeout's default.
const defaultAuditTimeout = 2 * time.Second

// DefaultConfig returns a Config with every optional field at its default.
func DefaultConfig() Config {
	return Config{
		ListenGRPC:            "127.0.0.1:7400",
		ListenRaft:            "127.0.0.1:7500",
		ListenGossip:          "127.0.0.1:7600",
		MetaVoters:            3,
		DeadNodeGrace:         30 * time.Second,
		ReconcileInterval:     time.Second,
		MinFreeDisk:           64 << 20,
		CacheSize:             256 << 20,
		MaxMovesInFlight:      4,
		LeaderBalanceInterval: 10 * time.Second,
		HandoverTimeout:       5 * time.Second,
		AuditTimeout:          defaultAuditTimeout,
		Raft:                  DefaultRaftConfig(),
		KeepaliveTime:         10 * time.Second,
		KeepaliveTimeout:      5 * time.Second,
		KeepaliveMinTime:      5 * time.Second,
		MaxConnections:        4096,
		HandshakeTimeout:      10 * time.Second,
		MaxConcurrentStreams:  1024,
		RequestRate:           100000,
		RequestBurst:          200000,
	}
}

// maxRequestRate is the highest RequestRate: a caller's bucket counts in
// nanoseconds per request.
const maxRequestRate = 1e9

// minKeepaliveTime is gRPC's floor for a client connection's pings; it
// raises shorter intervals to it.
const minKeepaliveTime = 10 * time.Second

// DefaultRaftConfig returns the Raft tuning defaults.
func DefaultRaftConfig() RaftConfig {
	return RaftConfig{
		HeartbeatTimeout:   time.Second,
		ElectionTimeout:    time.Second,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      time.Second,
		MaxAppendEntries:   256,
		SnapshotThreshold:  16384,
		SnapshotInterval:   30 * time.Second,
		TrailingLogs:       10240,
		ApplyTimeout:       5 * time.Second,
		GroupCommitWindow:  raftfsm.DefaultGroupCommitWindow,
	}
}

var nodeIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ErrInvalidConfig is wrapped by every Validate error.
var ErrInvalidConfig = errors.New("invalid config")

// Validate reports the first problem with the config, naming the field and its value.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if !nodeIDPattern.MatchString(c.NodeID) {
		return bad("node id %q: want 1-64 characters of a-z, 0-9, '.', '_', '-' starting with a letter or digit", c.NodeID)
	}
	if err := c.Locality.Validate(); err != nil {
		return bad("locality: %v", err)
	}
	if c.DataDir == "" {
		return bad("data dir is empty")
	}
	for name, addr := range map[string]string{"listen-grpc": c.ListenGRPC, "listen-raft": c.ListenRaft, "listen-gossip": c.ListenGossip} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return bad("%s %q: %v", name, addr, err)
		}
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return bad("join address %q: %v", j, err)
		}
	}
	for _, a := range []struct{ name, addr string }{
		{"advertise-grpc", c.AdvertiseGRPC}, {"advertise-raft", c.AdvertiseRaft}, {"advertise-gossip", c.AdvertiseGossip},
	} {
		if _, _, err := net.SplitHostPort(a.addr); a.addr != "" && (err != nil || !utf8.ValidString(a.addr)) {
			return bad("%s %q: want host:port", a.name, a.addr)
		}
	}
	if n := len(mustJSON(c.gossipMetaBound())); n > memberlist.MetaMaxSize {
		return bad("advertise-grpc %q, advertise-raft %q: with the node id and locality they take up to %d bytes of gossip metadata, over the limit of %d",
			c.AdvertiseGRPC, c.AdvertiseRaft, n, memberlist.MetaMaxSize)
	}
	if _, err := c.catalogue(); err != nil {
		return bad("jurisdictions: %v", err)
	}
	if _, err := c.PersonalDataGuardrail(); err != nil {
		return bad("personal-data-jurisdiction %q: %v", c.PersonalDataJurisdiction, err)
	}
	if c.MetaVoters < 1 || c.MetaVoters > 7 {
		return bad("meta voters %d: want 1..7", c.MetaVoters)
	}
	if c.DeadNodeGrace <= 0 || c.ReconcileInterval <= 0 || c.MaxMovesInFlight < 1 {
		return bad("dead node grace %v, reconcile interval %v, max moves in flight %d: all must be positive",
			c.DeadNodeGrace, c.ReconcileInterval, c.MaxMovesInFlight)
	}
	if c.LeaderBalanceInterval <= 0 {
		return bad("leader balance interval %v: must be positive", c.LeaderBalanceInterval)
	}
	if c.HandoverTimeout < 0 {
		return bad("handover timeout %v: want 0 (no hand-over) or a positive duration", c.HandoverTimeout)
	}
	if c.CacheSize < 1<<20 {
		return bad("cache size %d: want at least 1 MiB", c.CacheSize)
	}
	if c.MinFreeDisk < 0 {
		return bad("min free disk %d: want 0 (off) or a number of bytes", c.MinFreeDisk)
	}
	if c.KeepaliveTime < minKeepaliveTime || c.KeepaliveTimeout <= 0 || c.KeepaliveMinTime <= 0 || c.KeepaliveMinTime > c.KeepaliveTime {
		return bad("keepalive time %v, timeout %v, min time %v: want a time of at least %v, a positive timeout, and a positive min time no longer than the time",
			c.KeepaliveTime, c.KeepaliveTimeout, c.KeepaliveMinTime, minKeepaliveTime)
	}
	if err := c.validateFrontDoor(); err != nil {
		return bad("%v", err)
	}
	r := c.Raft
	if r.HeartbeatTimeout < 5*time.Millisecond || r.ElectionTimeout < 5*time.Millisecond {
		return bad("raft heartbeat timeout %v / election timeout %v: want at least 5ms", r.HeartbeatTimeout, r.ElectionTimeout)
	}
	if r.LeaderLeaseTimeout <= 0 || r.LeaderLeaseTimeout > r.HeartbeatTimeout {
		return bad("raft leader lease timeout %v: want >0 and <= heartbeat timeout %v", r.LeaderLeaseTimeout, r.HeartbeatTimeout)
	}
	if r.CommitTimeout <= 0 {
		return bad("raft commit timeout %v: want > 0", r.CommitTimeout)
	}
	if r.GroupCommitWindow < 0 || r.GroupCommitWindow > 100*time.Millisecond {
		return bad("raft group commit window %v: want 0 (off) to 100ms", r.GroupCommitWindow)
	}
	if r.MaxAppendEntries < 1 || r.MaxAppendEntries > 1024 {
		return bad("raft max append entries %d: want 1..1024", r.MaxAppendEntries)
	}
	if r.SnapshotThreshold == 0 || r.SnapshotInterval <= 0 || r.ApplyTimeout <= 0 {
		return bad("raft snapshot threshold %d, snapshot interval %v, apply timeout %v: all must be positive",
			r.SnapshotThreshold, r.SnapshotInterval, r.ApplyTimeout)
	}
	return nil
}

// validateFrontDoor checks the front-door limits.
func (c Config) validateFrontDoor() error {
	switch {
	case c.MaxConnections < 1:
		return fmt.Errorf("max connections %d: want at least 1", c.MaxConnections)
	case c.HandshakeTimeout <= 0:
		return fmt.Errorf("handshake timeout %v: want > 0", c.HandshakeTimeout)
	case c.MaxConcurrentStreams < 1:
		return fmt.Errorf("max concurrent streams %d: want at least 1", c.MaxConcurrentStreams)
	case !(c.RequestRate >= 0 && c.RequestRate <= maxRequestRate):
		return fmt.Errorf("request rate %v: want 0 (off) to %g requests a second", c.RequestRate, maxRequestRate)
	case c.RequestRate > 0 && c.RequestBurst < 1:
		return fmt.Errorf("request burst %d: want at least 1 with a request rate of %v", c.RequestBurst, c.RequestRate)
	}
	return nil
}

// longestLocalAddr is as long as an address the node takes from a listener
// or a resolved name gets: an IPv6 address with a 15-byte interface zone and
// a five-digit port.
const longestLocalAddr = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%interface-name1]:65535"

// gossipMetaBound is the largest gossip metadata the node can advertise;
// memberlist refuses (panics on) more than memberlist.MetaMaxSize bytes. The
// gRPC address goes out as given; the Raft address as it resolves, which
// keeps an IP literal's zone and may turn a port name into five digits; the
// others are taken from the listeners; the leaving mark is set, as Close
// announces it.
func (c Config) gossipMetaBound() gossipMeta {
	m := gossipMeta{ID: c.NodeID, Locality: c.Locality, GRPC: c.AdvertiseGRPC, Raft: longestLocalAddr, Gossip: longestLocalAddr, Leaving: true}
	if m.GRPC == "" {
		m.GRPC = longestLocalAddr
	}
	if r := c.AdvertiseRaft + "65535"; len(r) > len(longestLocalAddr) {
		m.Raft = r
	}
	return m
}

// catalogue is the built-in jurisdiction catalogue plus the operator's sets.
func (c Config) catalogue() (*placement.Catalogue, error) {
	cat := placement.DefaultCatalogue()
	names := make([]string, 0, len(c.Jurisdictions))
	for n := range c.Jurisdictions {
		names = append(names, n)
	}
	sortStrings(names)
	for _, n := range names {
		var err error
		if cat, err = cat.With(n, c.Jurisdictions[n]); err != nil {
			return nil, err
		}
	}
	return cat, nil
}
