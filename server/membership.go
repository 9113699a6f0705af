package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/clover-kv/clover/internal/gossiptls"
	"github.com/clover-kv/clover/placement"
)

// gossipMeta is what a node tells others about itself through memberlist. In
// development mode the locality comes from the node's configuration; the meta
// group records it, and gossip never changes a recorded jurisdiction of a node
// with replicas.
type gossipMeta struct {
	ID       string             `json:"id"`
	Locality placement.Locality `json:"loc"`
	GRPC     string             `json:"grpc"`
	Raft     string             `json:"raft"`
	Gossip   string             `json:"gossip"`
	// Leaving: the node is shutting down on purpose (Close) and is about
	// to leave gossip; its peers expect it to stop answering.
	Leaving bool `json:"leaving,omitempty"`
}

// membership runs memberlist and turns its events into a coalesced signal.
type membership struct {
	ml      *memberlist.Memberlist
	changed chan struct{}
	logger  *slog.Logger
	meta    atomic.Pointer[[]byte]
	mu      sync.Mutex
	metas   map[string][]byte // live members' metadata by node name
	self    string            // advertised gossip address
	name    string            // this node's ID
	selfRec gossipMeta        // what this node announces (meta holds it encoded)
	// departures learns from every member's metadata whether it leaves.
	departures *departures
}

func startMembership(cfg *Config, self gossipMeta, d *departures, serverTLS *tls.Config, verifyDial func(string, tls.ConnectionState) error) (*membership, error) {
	host, portStr, _ := net.SplitHostPort(cfg.ListenGossip)
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("gossip port %q: %w", portStr, err)
	}
	m := &membership{changed: make(chan struct{}, 1), logger: cfg.Logger.With("component", "gossip"), metas: map[string][]byte{}, name: cfg.NodeID, departures: d}
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeID
	mc.BindAddr = host
	mc.BindPort = port
	if cfg.AdvertiseGossip != "" {
		ah, ap, err := net.SplitHostPort(cfg.AdvertiseGossip)
		if err != nil {
			return nil, fmt.Errorf("advertise gossip %q: %w", cfg.AdvertiseGossip, err)
		}
		mc.AdvertiseAddr = ah
		mc.AdvertisePort, _ = strconv.Atoi(ap)
	}
	// In secure mode gossip runs over mutual TLS; memberlist then binds
	// nothing itself and takes the advertised address from the transport.
	var tr *gossiptls.Transport
	if cfg.ServerTLS != nil && cfg.ClientTLS != nil {
		tr, err = gossiptls.New(gossiptls.Config{
			BindAddr: cfg.ListenGossip, Advertise: cfg.AdvertiseGossip,
			ServerTLS: serverTLS, ClientTLS: cfg.ClientTLS, VerifyDial: verifyDial,
			MaxConns: cfg.MaxConnections, Logger: m.logger,
		})
		if err != nil {
			return nil, fmt.Errorf("start gossip on %s: %w", cfg.ListenGossip, err)
		}
		mc.Transport = tr
	}
	// Faster failure detection than the LAN defaults: clusters span a few sites.
	mc.ProbeInterval = 500 * time.Millisecond
	mc.ProbeTimeout = 250 * time.Millisecond
	mc.SuspicionMult = 3
	mc.GossipInterval = 100 * time.Millisecond
	mc.Logger = stdlogFor(m.logger, d)
	mc.Delegate = m
	mc.Events = m
	self.Gossip = "" // filled once the listener is bound
	m.setMeta(self)
	ml, err := memberlist.Create(mc)
	if err != nil {
		if tr != nil {
			_ = tr.Shutdown() // memberlist does not always shut down a transport it failed to use
		}
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.ListenGossip, err)
	}
	m.ml = ml
	ln := ml.LocalNode()
	self.Gossip = net.JoinHostPort(ln.Addr.String(), strconv.Itoa(int(ln.Port)))
	m.self = self.Gossip
	m.setMeta(self)
	if err := ml.UpdateNode(time.Second); err != nil {
		m.logger.Warn("gossip metadata update", "err", err)
	}
	return m, nil
}

// members returns the live members' metadata, keyed by node ID. The
// metadata is copied in memberlist's callbacks: the *Node values memberlist
// hands out are written by it later under its own lock.
func (m *membership) members() map[string]gossipMeta {
	out := map[string]gossipMeta{}
	m.mu.Lock()
	metas := maps.Clone(m.metas)
	m.mu.Unlock()
	for name, meta := range metas {
		var gm gossipMeta
		if err := json.Unmarshal(meta, &gm); err != nil || gm.ID != name || !nodeIDPattern.MatchString(gm.ID) {
			m.logger.Warn("ignoring member with bad metadata", "member", name)
			continue
		}
		if err := gm.Locality.Validate(); err != nil {
			m.logger.Warn("ignoring member with bad locality", "member", name, "err", err)
			continue
		}
		out[gm.ID] = gm
	}
	return out
}

// gossipLeaveTimeout bounds how long announcing a leave, and then leaving,
// waits for gossip to send the message to a peer.
const gossipLeaveTimeout = 500 * time.Millisecond

// announceLeaving marks this node's metadata as leaving and waits until
// gossip has sent the update to a peer (at most gossipLeaveTimeout): from
// then on peers expect it to stop answering.
func (m *membership) announceLeaving() {
	self := m.selfRec
	self.Leaving = true
	m.setMeta(self)
	if err := m.ml.UpdateNode(gossipLeaveTimeout); err != nil {
		m.logger.Debug("gossip: announcing the leave", "err", err)
	}
}

// close leaves gossip (memberlist's Leave: peers see the node left, not
// failed) and stops it.
func (m *membership) close() {
	if err := m.ml.Leave(gossipLeaveTimeout); err != nil {
		m.logger.Debug("gossip: leave", "err", err)
	}
	_ = m.ml.Shutdown()
}

func (m *membership) notify() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// memberlist.Delegate
func (m *membership) NodeMeta(limit int) []byte {
	if b := m.meta.Load(); b != nil {
		return *b
	}
	return nil
}

func (m *membership) setMeta(g gossipMeta) {
	b := mustJSON(g)
	m.selfRec = g
	m.meta.Store(&b)
}

func (m *membership) selfGossipAddr() string                     { return m.self }
func (m *membership) NotifyMsg([]byte)                           {}
func (m *membership) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (m *membership) LocalState(join bool) []byte                { return nil }
func (m *membership) MergeRemoteState(buf []byte, join bool)     {}

// memberlist.EventDelegate
func (m *membership) NotifyJoin(n *memberlist.Node)   { m.record(n.Name, n.Meta) }
func (m *membership) NotifyUpdate(n *memberlist.Node) { m.record(n.Name, n.Meta) }
func (m *membership) NotifyLeave(n *memberlist.Node) {
	m.mu.Lock()
	delete(m.metas, n.Name)
	m.mu.Unlock()
	m.notify()
}

// record keeps a copy of a member's metadata; memberlist calls it with the
// node's fields stable. It tells departures whether the member leaves.
func (m *membership) record(name string, meta []byte) {
	m.mu.Lock()
	m.metas[name] = bytes.Clone(meta)
	m.mu.Unlock()
	var gm gossipMeta
	if err := json.Unmarshal(meta, &gm); err == nil && gm.ID == name && name != m.name && m.departures.set(gm) {
		if gm.Leaving {
			m.logger.Info("gossip: peer is leaving the cluster", "member", name)
		} else {
			m.logger.Info("gossip: peer is back", "member", name)
		}
	}
	m.notify()
}

// gossipJoinLoop keeps this node in the gossip cluster. Alone, it joins the
// configured peers and the gossip addresses recorded in the catalogue (so a
// restarted node that founded the cluster, and has no --join, finds the
// others again). Not alone, it still rejoins every recorded node that gossip
// has lost: memberlist stops probing a member it declared dead, so after a
// partition longer than its suspicion timeout each side would otherwise
// stay dead to the other for good, even once the network heals.
func (s *Server) gossipJoinLoop(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for {
		alive := s.gossip.members()
		var peers []string
		if len(alive) <= 1 {
			peers = append(peers, s.cfg.Join...)
		}
		var lost []string
		for _, n := range s.catalog().sortedNodes() {
			if _, ok := alive[n.ID]; !ok && n.ID != s.cfg.NodeID && n.GossipAddr != "" {
				peers = append(peers, n.GossipAddr)
				lost = append(lost, n.ID)
			}
		}
		if len(peers) > 0 {
			if n, err := s.gossip.ml.Join(peers); n > 0 {
				s.logger.Info("joined gossip", "contacted", n, "lost", lost)
				backoff = 100 * time.Millisecond
			} else {
				// A lost node may be down for good; keep trying, quietly
				// once others are around.
				level := slog.LevelWarn
				if len(alive) > 1 {
					level = slog.LevelDebug
				}
				s.logger.Log(ctx, level, "join failed; retrying", "peers", len(peers), "lost", lost, "err", err, "retry_in", backoff)
				backoff = min(backoff*2, 5*time.Second)
			}
		} else {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}
