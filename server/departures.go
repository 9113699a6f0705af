package server

import (
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
)

// departures knows which peers announced through gossip that they are
// leaving the cluster, and whether this node is itself shutting down. A
// peer that leaves stops answering on purpose: the failures to reach it
// that hashicorp/raft reports (appendEntries, heartbeats, votes) are
// expected, and the log bridge lowers them below WARN (see lower). A peer
// that disappears without announcing it (a crash, a partition) is not
// here, and its failures keep their level.
type departures struct {
	closing atomic.Bool // this node's Close has begun

	mu    sync.RWMutex
	peers map[string]gossipMeta // node ID -> metadata of every leaving peer
	addrs map[string]string     // Raft and gossip addresses -> node ID of the same peers
}

func newDepartures() *departures {
	return &departures{peers: map[string]gossipMeta{}, addrs: map[string]string{}}
}

// set records what a member's latest gossip metadata says: leaving or not
// (a node that restarts announces itself again without the mark). It
// reports whether the member's mark changed.
func (d *departures) set(m gossipMeta) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	old, had := d.peers[m.ID]
	if m.Leaving == had && (!had || old == m) {
		return false
	}
	delete(d.addrs, old.Raft)
	delete(d.addrs, old.Gossip)
	delete(d.peers, m.ID)
	if m.Leaving {
		d.peers[m.ID] = m
		for _, a := range []string{m.Raft, m.Gossip} {
			if a != "" {
				d.addrs[a] = m.ID
			}
		}
	}
	return m.Leaving != had
}

// leaving reports whether a node, by ID or by Raft address, announced
// that it leaves.
func (d *departures) leaving(idOrAddr string) bool {
	if idOrAddr == "" {
		return false
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	_, byID := d.peers[idOrAddr]
	_, byAddr := d.addrs[idOrAddr]
	return byID || byAddr
}

// peerKeys are the fields in which hashicorp/raft names the peer a line is
// about: a raft.Server (as a JSON object), an address or an ID.
var peerKeys = []string{"peer", "target", "server-id", "last-leader-id", "last-leader-addr"}

// lower returns the level a bridged library line is logged at: a WARN or
// ERROR line about a peer that announced its leave is DEBUG, and so is one
// logged while this node shuts down (its own groups and connections
// stopping). Everything else keeps lvl.
func (d *departures) lower(lvl slog.Level, rec map[string]any) slog.Level {
	if lvl < slog.LevelWarn {
		return lvl
	}
	if d.closing.Load() {
		return slog.LevelDebug
	}
	for _, k := range peerKeys {
		if d.concerns(rec[k]) {
			return slog.LevelDebug
		}
	}
	return lvl
}

// concerns reports whether a logged peer value names a leaving peer.
func (d *departures) concerns(v any) bool {
	switch p := v.(type) {
	case string:
		return d.leaving(p)
	case map[string]any:
		id, _ := p["ID"].(string)
		addr, _ := p["Address"].(string)
		return d.leaving(id) || d.leaving(addr)
	}
	return false
}

// lowerLine is lower for memberlist's text lines, which name a peer only
// inside the message: a line naming a leaving peer's node ID or gossip
// address is DEBUG.
func (d *departures) lowerLine(lvl slog.Level, line string) slog.Level {
	if lvl < slog.LevelWarn {
		return lvl
	}
	if d.closing.Load() {
		return slog.LevelDebug
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	for id, m := range d.peers {
		if containsName(line, id) || (m.Gossip != "" && strings.Contains(line, m.Gossip)) {
			return slog.LevelDebug
		}
	}
	return lvl
}

// containsName reports whether line holds the node ID id as a whole word:
// not inside a longer ID ("n1" is not in "n10").
func containsName(line, id string) bool {
	for i := 0; ; {
		j := strings.Index(line[i:], id)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(id)
		if (start == 0 || !isIDByte(line[start-1])) && (end == len(line) || !isIDByte(line[end])) {
			return true
		}
		i = start + 1
	}
}

func isIDByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-'
}
