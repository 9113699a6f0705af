package raftfsm

import "time"

// groupCommit paces the WAL syncs of one node's Pebble DB so that, under
// load, the synced log appends of many shards share one fsync.
//
// Pebble merges the syncs requested while an fsync runs into the next one.
// With many Raft groups per node that is not enough: each group has one
// append in flight at a time, appends of different groups arrive spread
// out, and a saturated disk ends up doing about one fsync per append (and
// three per Raft entry, one on each replica). Pebble can hold the next sync
// back for a minimum interval after the last one (WALMinSyncInterval,
// evaluated after every sync). groupCommit holds it for the window while
// the node is busy, as the caller's Busy function reports (the server: at
// least two client writes in flight on the node), so that the appends of
// several shards ride one fsync; a lone writer never waits.
type groupCommit struct {
	window time.Duration
	busy   func() bool
}

// minSyncInterval is Pebble's WALMinSyncInterval. Pebble calls it from the
// WAL's flush loop after every sync.
func (g groupCommit) minSyncInterval() time.Duration {
	if g.busy() {
		return g.window
	}
	return 0
}
