package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"

	"github.com/clover-kv/clover/raftfsm"
)

// Damaged replicas.
//
// Every replica's stored records are verified as the node opens it (see
// raftfsm.VerifyShard; the newest snapshot's checksum too), and a running
// replica whose state machine halts on damaged bytes is taken out of
// service. Either way the node marks the shard damaged: it does not run the
// replica (so it neither serves nor votes with a log it cannot trust),
// reports it in NodeStatus, and the placement controller removes it from the
// shard's Raft configuration as it would a replica on a dead node. Once the
// catalogue no longer assigns the shard here, the node deletes the damaged
// data; the controller may then add this node back as a fresh, empty member
// that catches up from the healthy replicas by snapshot.
//
// Damage to the meta group's replica, or to the write-ahead log shared by
// every shard, makes the node refuse to start instead.

// markDamaged takes shard out of service on this node. Damage Pebble itself
// reports (a data file's block checksum) lies in files every shard shares
// and cannot be deleted without reading it: the node stops instead.
func (s *Server) markDamaged(shard uint64, err error) {
	if pebble.IsCorruptionError(err) {
		s.fail(fmt.Errorf("shard %d: %w", shard, err))
		return
	}
	s.mu.Lock()
	_, had := s.damaged[shard]
	s.damaged[shard] = err
	s.mu.Unlock()
	if !had {
		s.logger.Error("replica damaged: its stored data failed verification; it serves nothing and is replaced from the healthy replicas",
			"shard", shard, "err", err)
		s.ctrl.poke()
	}
}

// fail takes the whole node out of service after damage to its store: it
// stops serving and Failed is closed; the process should exit. A restart
// finds the damage again and refuses to start.
func (s *Server) fail(err error) {
	s.failOnce.Do(func() {
		s.failErr = err
		s.logger.Error("stopping: this node's store is damaged"+damageHint(err), "err", err)
		close(s.failed)
		go s.Close()
	})
}

// Failed is closed when the node has stopped itself because its store is
// damaged; FailErr then says why.
func (s *Server) Failed() <-chan struct{} { return s.failed }

// FailErr returns why the node stopped itself, or nil.
func (s *Server) FailErr() error {
	select {
	case <-s.failed:
		return s.failErr
	default:
		return nil
	}
}

// damageHint tells the operator what to do about a damaged store.
func damageHint(err error) string {
	if !isDamage(err) && !pebble.IsCorruptionError(err) {
		return ""
	}
	return "; the node will not run on a damaged store: keep the data directory for inspection and replace the node " +
		"(docs/OPERATIONS.md, \"Damaged data\")"
}

// damagedErr returns why this node's replica of shard is out of service, or nil.
func (s *Server) damagedErr(shard uint64) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err, ok := s.damaged[shard]; ok {
		return unavailablef("the replica of shard %d on node %s is damaged: %v", shard, s.cfg.NodeID, err)
	}
	return nil
}

// isDamage reports whether an error opening or running a replica means its
// stored bytes cannot be trusted.
func isDamage(err error) bool { return errors.Is(err, raftfsm.ErrCorrupt) }

// discardDamaged deletes a damaged replica's data once the shard is no
// longer assigned to this node, and forgets the damage.
func (s *Server) discardDamaged(shard uint64) error {
	if err := raftfsm.DeleteShard(s.db, shard); err != nil {
		return fmt.Errorf("shard %d: delete damaged data: %w", shard, err)
	}
	if err := os.RemoveAll(s.snapDir(shard)); err != nil {
		return fmt.Errorf("shard %d: delete snapshots: %w", shard, err)
	}
	s.mu.Lock()
	delete(s.damaged, shard)
	s.mu.Unlock()
	s.logger.Info("damaged replica's data deleted", "shard", shard)
	return nil
}

func (s *Server) snapDir(shard uint64) string {
	return filepath.Join(s.cfg.DataDir, "snapshots", fmt.Sprint(shard))
}
