package server

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/clover-kv/clover/raftfsm"
)

// maxHistory bounds the placement history kept in the meta group; older
// events are deleted as new ones are written.
const maxHistory = 10000

var histSeq atomic.Uint64

// historyOps returns the ops that record events (and trim the oldest beyond
// maxHistory) in the same meta command as the change they describe.
func (s *Server) historyOps(c *catalog, events ...historyEvent) []raftfsm.Op {
	var ops []raftfsm.Op
	now := time.Now()
	for _, ev := range events {
		if ev.UnixMs == 0 {
			ev.UnixMs = now.UnixMilli()
		}
		key := fmt.Sprintf("%s%020d-%06d", metaHistPfx, now.UnixNano(), histSeq.Add(1)%1000000)
		ops = append(ops, putOp([]byte(key), mustJSON(ev)))
	}
	if over := len(c.history) + len(events) - maxHistory; over > 0 {
		// History keys sort by time; the catalogue holds them oldest first.
		keys := c.historyKeys
		for i := 0; i < over && i < len(keys); i++ {
			ops = append(ops, raftfsm.Op{Kind: raftfsm.OpDelete, Key: []byte(keys[i])})
		}
	}
	return ops
}
