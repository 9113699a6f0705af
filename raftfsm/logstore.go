package raftfsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// LogStore is the raft.LogStore and raft.StableStore of one shard, kept in
// the node's shared Pebble DB under the shard's prefix. Wrap it with
// raft.NewLogCache for replication.
//
// StoreLog, StoreLogs, DeleteRange, Set and SetUint64 are synced before they
// return; concurrent syncs of all shards share fsyncs through Pebble's
// commit pipeline. Every record carries a CRC-32C: a damaged log record
// makes GetLog return an error wrapping ErrCorrupt rather than a wrong entry.
//
// First and last index are kept in memory, initialized by seeking at open
// and maintained by the writers. All methods are safe for concurrent use.
type LogStore struct {
	db    *pebble.DB
	shard uint64

	logStart, logEnd []byte

	mu  sync.Mutex // serializes writers and their index updates
	buf []byte     // encode scratch, guarded by mu

	first, last atomic.Uint64
}

var (
	_ raft.LogStore          = (*LogStore)(nil)
	_ raft.StableStore       = (*LogStore)(nil)
	_ raft.MonotonicLogStore = (*LogStore)(nil)
)

// IsMonotonic reports true: after a follower installs a snapshot, raft
// deletes the log up to the snapshot (see DeleteRange) rather than only
// part of it below the snapshot, so the log never keeps a stale tail below
// the snapshot with a hole between it and the entries the leader sends next.
func (s *LogStore) IsMonotonic() bool { return true }

// NewLogStore opens the log and stable store of shard on db.
func NewLogStore(db *pebble.DB, shard uint64) (*LogStore, error) {
	s := &LogStore{db: db, shard: shard}
	s.logStart, s.logEnd = kindSpan(shard, kindLog)
	if err := s.loadBounds(); err != nil {
		return nil, fmt.Errorf("raftfsm: shard %d: open log store: %w", shard, err)
	}
	return s, nil
}

// loadBounds sets first and last by seeking the log span.
func (s *LogStore) loadBounds() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: s.logStart, UpperBound: s.logEnd})
	if err != nil {
		return err
	}
	var first, last uint64
	if it.First() {
		if first, err = s.keyIndex(it.Key()); err == nil && it.Last() {
			last, err = s.keyIndex(it.Key())
		}
	}
	if err = errors.Join(err, it.Error(), it.Close()); err != nil {
		return err
	}
	s.first.Store(first)
	s.last.Store(last)
	return nil
}

func (s *LogStore) keyIndex(k []byte) (uint64, error) {
	if len(k) != kindPrefixLen+8 {
		return 0, corruptf("log key of %d bytes", len(k))
	}
	return binary.BigEndian.Uint64(k[kindPrefixLen:]), nil
}

func (s *LogStore) logKey(index uint64) []byte {
	return appendLogKey(make([]byte, 0, kindPrefixLen+8), s.shard, index)
}

// FirstIndex returns the first index stored, 0 if none.
func (s *LogStore) FirstIndex() (uint64, error) { return s.first.Load(), nil }

// LastIndex returns the last index stored, 0 if none.
func (s *LogStore) LastIndex() (uint64, error) { return s.last.Load(), nil }

// GetLog reads the entry at index into log. A missing index returns
// raft.ErrLogNotFound; a damaged record an error wrapping ErrCorrupt.
func (s *LogStore) GetLog(index uint64, log *raft.Log) error {
	var kb [kindPrefixLen + 8]byte
	v, closer, err := s.db.Get(appendLogKey(kb[:0], s.shard, index))
	if errors.Is(err, pebble.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return fmt.Errorf("raftfsm: shard %d: get log %d: %w", s.shard, index, storageErr(err))
	}
	defer closer.Close()
	if err := decodeLog(v, log); err != nil {
		return fmt.Errorf("raftfsm: shard %d: log %d: %w", s.shard, index, err)
	}
	if log.Index != index {
		return fmt.Errorf("raftfsm: shard %d: log %d: %w", s.shard, index, corruptf("record holds index %d", log.Index))
	}
	return nil
}

// StoreLog stores one entry (synced).
func (s *LogStore) StoreLog(log *raft.Log) error {
	return s.StoreLogs([]*raft.Log{log})
}

// StoreLogs stores entries in one synced batch.
func (s *LogStore) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	lo, hi := logs[0].Index, logs[0].Index
	var kb [kindPrefixLen + 8]byte
	for _, l := range logs {
		lo, hi = min(lo, l.Index), max(hi, l.Index)
		s.buf = encodeLog(s.buf[:0], l)
		if err := b.Set(appendLogKey(kb[:0], s.shard, l.Index), s.buf, nil); err != nil {
			return fmt.Errorf("raftfsm: shard %d: store logs: %w", s.shard, err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("raftfsm: shard %d: store logs: %w", s.shard, err)
	}
	if first := s.first.Load(); first == 0 || lo < first {
		s.first.Store(lo)
	}
	if hi > s.last.Load() {
		s.last.Store(hi)
	}
	return nil
}

// DeleteRange deletes the entries in [min, max] (synced).
//
// A range that starts at or below the shard's applied index and ends above
// it is cut at the applied index: only raft's clean-up after a follower
// installs a snapshot asks for that (it deletes the whole log of a
// MonotonicLogStore, [first, last], while its in-memory last index stays
// where the log ended: hashicorp/raft#697). Deleting the entries above the
// snapshot too would leave raft believing it holds them, accept an append
// right after them, and panic reading them ("log not found") once they
// commit. Kept, they are the follower's own log above the snapshot, and the
// usual checks of appends resolve any conflict with the leader's. Every
// other caller deletes either a prefix at or below the applied index
// (compaction after a snapshot) or a suffix above the commit index, and so
// above the applied index (a conflicting tail), and is served as asked.
func (s *LogStore) DeleteRange(min, max uint64) error {
	if min > max {
		return nil
	}
	applied, _, err := readApplied(s.db, appliedKey(s.shard))
	if err != nil {
		return fmt.Errorf("raftfsm: shard %d: delete logs [%d, %d]: read applied index: %w", s.shard, min, max, storageErr(err))
	}
	if applied > 0 && min <= applied && max > applied {
		max = applied
	}
	end := s.logEnd
	if max < ^uint64(0) {
		end = s.logKey(max + 1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.DeleteRange(s.logKey(min), end, pebble.Sync); err != nil {
		return fmt.Errorf("raftfsm: shard %d: delete logs [%d, %d]: %w", s.shard, min, max, err)
	}
	if err := s.loadBounds(); err != nil {
		return fmt.Errorf("raftfsm: shard %d: delete logs [%d, %d]: %w", s.shard, min, max, err)
	}
	return nil
}

// Set stores a stable value (synced).
func (s *LogStore) Set(key, val []byte) error {
	v := binary.LittleEndian.AppendUint32(bytes.Clone(val), crc32.Checksum(val, castagnoli))
	if err := s.db.Set(stableKey(s.shard, key), v, pebble.Sync); err != nil {
		return fmt.Errorf("raftfsm: shard %d: stable set: %w", s.shard, err)
	}
	return nil
}

// Get returns a stable value. A missing key returns ErrKeyNotFound, whose
// text "not found" is what hashicorp/raft checks for.
func (s *LogStore) Get(key []byte) ([]byte, error) {
	v, closer, err := s.db.Get(stableKey(s.shard, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("raftfsm: shard %d: stable get: %w", s.shard, storageErr(err))
	}
	defer closer.Close()
	if !stableRecordOK(v) {
		return nil, fmt.Errorf("raftfsm: shard %d: stable get: %w", s.shard, corruptf("stable record checksum mismatch"))
	}
	return append([]byte{}, v[:len(v)-crcLen]...), nil
}

// SetUint64 stores a stable uint64 (synced).
func (s *LogStore) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 returns a stable uint64. A missing key returns (0,
// ErrKeyNotFound), as raft-boltdb does; raft treats it as zero.
func (s *LogStore) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("raftfsm: shard %d: stable get: %w", s.shard, corruptf("uint64 of %d bytes", len(v)))
	}
	return binary.BigEndian.Uint64(v), nil
}

// Log record format, version 1:
//
//	version     byte (1)
//	index       uvarint
//	term        uvarint
//	type        byte
//	flags       byte (bit 0: AppendedAt present; other bits 0)
//	appendedAt  varint Unix nanoseconds, only if flagged
//	data        uvarint length, bytes
//	extensions  uvarint length, bytes
//	crc         4 bytes little-endian, CRC-32C of every byte before it
const (
	logVersion     byte = 1
	flagAppendedAt byte = 1 << 0
)

func encodeLog(dst []byte, l *raft.Log) []byte {
	start := len(dst)
	dst = append(dst, logVersion)
	dst = binary.AppendUvarint(dst, l.Index)
	dst = binary.AppendUvarint(dst, l.Term)
	dst = append(dst, byte(l.Type))
	if l.AppendedAt.IsZero() {
		dst = append(dst, 0)
	} else {
		dst = append(dst, flagAppendedAt)
		dst = binary.AppendVarint(dst, l.AppendedAt.UnixNano())
	}
	dst = binary.AppendUvarint(dst, uint64(len(l.Data)))
	dst = append(dst, l.Data...)
	dst = binary.AppendUvarint(dst, uint64(len(l.Extensions)))
	dst = append(dst, l.Extensions...)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// decodeLog decodes a log record into l. Data and Extensions are copies.
func decodeLog(v []byte, l *raft.Log) error {
	if len(v) < 1+crcLen {
		return corruptf("log record of %d bytes", len(v))
	}
	body := v[:len(v)-crcLen]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(v[len(v)-crcLen:]) {
		return corruptf("log record checksum mismatch")
	}
	if body[0] != logVersion {
		return corruptf("unknown log record version %d", body[0])
	}
	d := decoder{b: body, off: 1}
	var out raft.Log
	var err error
	if out.Index, err = d.uvarint(); err != nil {
		return err
	}
	if out.Term, err = d.uvarint(); err != nil {
		return err
	}
	if len(d.b)-d.off < 2 {
		return corruptf("truncated log record")
	}
	out.Type = raft.LogType(d.b[d.off])
	flags := d.b[d.off+1]
	d.off += 2
	if flags&^flagAppendedAt != 0 {
		return corruptf("unknown log record flags %#x", flags)
	}
	if flags&flagAppendedAt != 0 {
		ns, n := binary.Varint(d.b[d.off:])
		if n <= 0 {
			return corruptf("bad appendedAt")
		}
		d.off += n
		out.AppendedAt = time.Unix(0, ns)
	}
	data, err := d.bytes()
	if err != nil {
		return err
	}
	ext, err := d.bytes()
	if err != nil {
		return err
	}
	if d.off != len(d.b) {
		return corruptf("%d trailing bytes in log record", len(d.b)-d.off)
	}
	if len(data)+len(ext) > 0 {
		buf := make([]byte, len(data)+len(ext))
		copy(buf, data)
		copy(buf[len(data):], ext)
		if len(data) > 0 {
			out.Data = buf[:len(data):len(data)]
		}
		if len(ext) > 0 {
			out.Extensions = buf[len(data):]
		}
	}
	*l = out
	return nil
}

// stableRecordOK reports whether a stable-store record (value, then its
// CRC-32C) is intact.
func stableRecordOK(v []byte) bool {
	return len(v) >= crcLen && crc32.Checksum(v[:len(v)-crcLen], castagnoli) == binary.LittleEndian.Uint32(v[len(v)-crcLen:])
}
