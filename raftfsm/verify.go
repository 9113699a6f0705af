package raftfsm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// ShardCheck is what VerifyShard read.
type ShardCheck struct {
	LogRecords, DataRecords, StableRecords int
	FirstLog, LastLog                      uint64
	// AuditSize is the size of the audit stream's tree; AuditRecords counts
	// its records (leaves, stored hashes, size and salt).
	AuditSize    uint64
	AuditRecords int
}

// VerifyShard reads every stored record of shard (Raft log, stable store,
// applied index, user data, audit stream) and checks it: Pebble verifies the
// checksum of every block it reads, and the log, stable, applied and audit
// records carry their own CRC-32C. It checks that the audit stream holds
// exactly the leaves and stored hashes of a tree of its recorded size, and
// that the log has no hole above the applied index. A hole at or below it is legitimate: a follower that crashes
// between restoring a snapshot and dropping its old log keeps that log's
// tail below the snapshot index and appends after it, and raft never reads
// entries the snapshot covers. An error wraps
// ErrCorrupt when the bytes are damaged; it names the shard and the kind of
// record, never a user key.
//
// The cost is one pass over the shard's data; a node runs it for each
// replica it opens, so damage is found before the replica serves or votes.
func VerifyShard(db *pebble.DB, shard uint64) (ShardCheck, error) {
	var c ShardCheck
	start, end := ShardSpan(shard)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		return c, fmt.Errorf("raftfsm: verify shard %d: %w", shard, err)
	}
	fail := func(what string, err error) (ShardCheck, error) {
		_ = it.Close()
		return c, fmt.Errorf("raftfsm: shard %d: %s: %w", shard, what, storageErr(err))
	}
	var (
		l              raft.Log
		audit          auditTally
		applied        uint64
		holeLo, holeHi uint64 // the highest hole in the log, if any
	)
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			return fail("read", err)
		}
		if len(k) < kindPrefixLen {
			return fail("key", corruptf("shard key of %d bytes", len(k)))
		}
		rest := k[kindPrefixLen:]
		switch kind := k[shardPrefixLen]; kind {
		case kindLog:
			if len(rest) != 8 {
				return fail("raft log", corruptf("log key of %d bytes", len(k)))
			}
			idx := binary.BigEndian.Uint64(rest)
			if err := decodeLog(v, &l); err != nil {
				return fail(fmt.Sprintf("raft log entry %d", idx), err)
			}
			if l.Index != idx {
				return fail(fmt.Sprintf("raft log entry %d", idx), corruptf("record holds index %d", l.Index))
			}
			if c.LogRecords > 0 && idx != c.LastLog+1 {
				holeLo, holeHi = c.LastLog+1, idx-1
			}
			if c.LogRecords == 0 {
				c.FirstLog = idx
			}
			c.LastLog = idx
			c.LogRecords++
		case kindStable:
			if !stableRecordOK(v) {
				return fail("raft stable store", corruptf("stable record checksum mismatch"))
			}
			c.StableRecords++
		case kindApplied:
			if applied, _, err = decodeApplied(v); err != nil {
				return fail("applied index", err)
			}
		case kindData:
			if _, _, err := decodeStored(v); err != nil {
				return fail("data", err)
			}
			c.DataRecords++
		case kindAudit:
			if err := audit.add(rest, v); err != nil {
				return fail("audit stream", err)
			}
			c.AuditRecords++
		default:
			return fail("key", corruptf("unknown record kind %#x", kind))
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return c, fmt.Errorf("raftfsm: shard %d: read: %w", shard, storageErr(err))
	}
	if err := audit.check(); err != nil {
		return c, fmt.Errorf("raftfsm: shard %d: audit stream: %w", shard, err)
	}
	c.AuditSize = audit.size
	if holeHi > applied {
		return c, fmt.Errorf("raftfsm: shard %d: raft log: %w", shard,
			corruptf("entries %d to %d missing, above applied index %d", holeLo, holeHi, applied))
	}
	return c, nil
}

// VerifyStore runs VerifyShard over every shard that has records in db. A
// shard whose own records fail their checksums is reported in damaged; an
// error Pebble reports as corruption (a data file or its write-ahead log)
// is returned as err, since the damage then lies in files shared by every
// shard and cannot be removed without reading it: the node must not run on
// such a store. verified lists every shard checked.
func VerifyStore(db *pebble.DB) (verified []uint64, damaged map[uint64]error, err error) {
	damaged = map[uint64]error{}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{ShardKeyPrefix}, UpperBound: []byte{ShardKeyPrefix + 1}})
	if err != nil {
		return nil, nil, err
	}
	defer it.Close()
	for ok := it.First(); ok; {
		k := it.Key()
		if len(k) < shardPrefixLen {
			return verified, damaged, fmt.Errorf("raftfsm: verify store: %w", corruptf("shard key of %d bytes", len(k)))
		}
		shard := binary.BigEndian.Uint64(k[1:shardPrefixLen])
		if _, err := VerifyShard(db, shard); err != nil {
			if pebble.IsCorruptionError(err) || !errors.Is(err, ErrCorrupt) {
				return verified, damaged, err
			}
			damaged[shard] = err
		}
		verified = append(verified, shard)
		if shard == ^uint64(0) {
			break
		}
		ok = it.SeekGE(ShardPrefix(shard + 1))
	}
	if err := it.Error(); err != nil {
		return verified, damaged, fmt.Errorf("raftfsm: verify store: %w", storageErr(err))
	}
	return verified, damaged, nil
}
