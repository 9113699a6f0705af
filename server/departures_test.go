package server

import (
	"log/slog"
	"testing"

	"github.com/clover-kv/clover/placement"
)

// The log bridge lowers raft's WARN and ERROR lines about a peer only
// while that peer's gossip metadata says it leaves, and every library line
// while this node closes; nothing else changes level.
func TestDeparturesLowerOnlyLeavingPeers(t *testing.T) {
	d := newDepartures()
	m := &membership{changed: make(chan struct{}, 1), logger: slog.New(slog.DiscardHandler), metas: map[string][]byte{},
		name: "ie-1", departures: d}
	peer := gossipMeta{ID: "no-1", Locality: placement.Locality{Country: "NO"}, Raft: "10.0.0.3:7500", Gossip: "10.0.0.3:7600"}
	appendFailed := map[string]any{"peer": map[string]any{"ID": "no-1", "Address": "10.0.0.3:7500", "Suffrage": 0.0}}
	heartbeatFailed := map[string]any{"peer": "10.0.0.3:7500"}
	other := map[string]any{"peer": map[string]any{"ID": "no-10", "Address": "10.0.0.30:7500"}}
	gossipLine := "memberlist: Failed to send gossip to 10.0.0.3:7600: connection refused"

	m.record("no-1", mustJSON(peer))
	if got := d.lower(slog.LevelError, appendFailed); got != slog.LevelError {
		t.Fatalf("a live peer's failure lowered to %v", got)
	}

	peer.Leaving = true
	m.record("no-1", mustJSON(peer))
	for name, rec := range map[string]map[string]any{"appendEntries": appendFailed, "heartbeat": heartbeatFailed} {
		if got := d.lower(slog.LevelError, rec); got != slog.LevelDebug {
			t.Errorf("%s failure to a leaving peer logged at %v, want DEBUG", name, got)
		}
	}
	if got := d.lower(slog.LevelError, other); got != slog.LevelError {
		t.Errorf("another peer's failure (no-10, not leaving) lowered to %v", got)
	}
	if got := d.lowerLine(slog.LevelError, gossipLine); got != slog.LevelDebug {
		t.Errorf("gossip line about a leaving peer logged at %v, want DEBUG", got)
	}
	if got := d.lowerLine(slog.LevelWarn, "memberlist: Push/Pull with no-10 failed"); got != slog.LevelWarn {
		t.Errorf("gossip line naming no-10 lowered to %v", got)
	}

	// Restarted, the peer announces itself again without the mark.
	peer.Leaving = false
	m.record("no-1", mustJSON(peer))
	if got := d.lower(slog.LevelError, appendFailed); got != slog.LevelError {
		t.Errorf("a peer that came back: failure lowered to %v", got)
	}

	d.closing.Store(true)
	if got := d.lower(slog.LevelError, other); got != slog.LevelDebug {
		t.Errorf("while closing, a library ERROR logged at %v, want DEBUG", got)
	}
	if got := d.lower(slog.LevelInfo, other); got != slog.LevelInfo {
		t.Errorf("while closing, an INFO line changed to %v", got)
	}
}
