package raftfsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"golang.org/x/mod/sumdb/tlog"
)

// The audit stream of a shard is an append-only Merkle tree log (RFC 6962,
// as golang.org/x/mod/sumdb/tlog computes it) of opaque leaves, plus the
// shard's audit salt. It lives under the shard's 't' kind (see keys.go):
//
//	'h' | index  stored hash: hash (32 bytes)        | crc
//	'l' | index  leaf:        leaf bytes (1..64 KiB) | crc
//	's'          salt:        salt (32 bytes)        | crc
//	'z'          tree size:   size (8 bytes BE)      | crc
//
// crc is 4 bytes little-endian, the CRC-32C of the key's rest (audit kind
// and index) followed by the payload, so a record moved to another key is
// caught like a damaged one. Leaf i and the stored hashes tlog.StoredHashes
// returns for it are written in the batch of the entry that appends it,
// together with the new size; a tree of size n holds exactly n leaves and
// tlog.StoredHashCount(n) stored hashes.

// auditBatch is the audit state of the Pebble batch being built by
// ApplyBatch. Owned by the apply goroutine.
type auditBatch struct {
	size   uint64
	salt   []byte
	hashes map[int64]tlog.Hash // stored hashes written in this batch
}

// AuditSalt returns the shard's audit salt, nil until a command sets it.
// The slice is shared: callers must not modify it.
func (f *FSM) AuditSalt() []byte {
	if p := f.auditSaltP.Load(); p != nil {
		return *p
	}
	return nil
}

// AuditSize returns the number of leaves in the shard's audit stream, as of
// AppliedIndex.
func (f *FSM) AuditSize() uint64 { return f.auditSizeN.Load() }

// applyAudit appends c's audit leaf and sets its salt, in b. It reports
// whether a leaf was appended and its index. An error means storage failed.
func (f *FSM) applyAudit(b *pebble.Batch, c *Command) (appended bool, index uint64, err error) {
	if len(c.AuditSalt) != 0 && f.audit.salt == nil {
		if err := f.setAuditRecord(b, auditSalt, 0, c.AuditSalt); err != nil {
			return false, 0, err
		}
		f.audit.salt = bytes.Clone(c.AuditSalt)
	}
	if len(c.Audit) == 0 {
		return false, 0, nil
	}
	n := f.audit.size
	hashes, err := tlog.StoredHashes(int64(n), c.Audit, f.hashReader)
	if err != nil {
		return false, 0, fmt.Errorf("audit leaf %d: %w", n, err)
	}
	base := tlog.StoredHashIndex(0, int64(n))
	for i, h := range hashes {
		idx := base + int64(i)
		if err := f.setAuditRecord(b, auditHash, uint64(idx), h[:]); err != nil {
			return false, 0, err
		}
		f.audit.hashes[idx] = h
	}
	if err := f.setAuditRecord(b, auditLeaf, n, c.Audit); err != nil {
		return false, 0, err
	}
	f.audit.size = n + 1
	return true, n, nil
}

// readBatchHashes is the tlog.HashReader of apply: it sees the stored
// hashes of the current batch, then those committed.
func (f *FSM) readBatchHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		if h, ok := f.audit.hashes[idx]; ok {
			out[i] = h
			continue
		}
		h, err := readAuditHash(f.db, f.shard, idx)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

func (f *FSM) setAuditRecord(b *pebble.Batch, kind byte, index uint64, payload []byte) error {
	f.keyBuf = appendAuditKey(f.keyBuf[:0], f.shard, kind, index)
	f.valBuf = appendAuditValue(f.valBuf[:0], f.keyBuf[kindPrefixLen:], payload)
	if err := b.Set(f.keyBuf, f.valBuf, nil); err != nil {
		return fmt.Errorf("batch write: %w", err)
	}
	return nil
}

// writeAuditSize adds the size record to b if the batch appended leaves.
func (f *FSM) writeAuditSize(b *pebble.Batch) error {
	if f.audit.size == f.auditSizeN.Load() {
		return nil
	}
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], f.audit.size)
	return f.setAuditRecord(b, auditSize, 0, n[:])
}

// publishAudit makes the committed batch's audit state visible.
func (f *FSM) publishAudit() {
	if f.audit.salt != nil && f.auditSaltP.Load() == nil {
		salt := f.audit.salt
		f.auditSaltP.Store(&salt)
	}
	f.auditSizeN.Store(f.audit.size)
}

func appendAuditValue(dst, rest, payload []byte) []byte {
	dst = append(dst, payload...)
	crc := crc32.Update(crc32.Checksum(rest, castagnoli), castagnoli, payload)
	return binary.LittleEndian.AppendUint32(dst, crc)
}

// decodeAuditRecord checks one audit record, rest being its key after the
// kind prefix, and returns its audit kind, index (hash and leaf records)
// and payload, which aliases v.
func decodeAuditRecord(rest, v []byte) (kind byte, index uint64, payload []byte, err error) {
	if len(rest) == 0 {
		return 0, 0, nil, corruptf("audit key without audit kind")
	}
	kind = rest[0]
	var lo, hi int
	switch kind {
	case auditHash, auditLeaf:
		if len(rest) != 9 {
			return 0, 0, nil, corruptf("audit key of kind %c with %d bytes", kind, len(rest))
		}
		index = binary.BigEndian.Uint64(rest[1:])
		lo, hi = tlog.HashSize, tlog.HashSize
		if kind == auditLeaf {
			lo, hi = 1, MaxAuditLeafSize
		}
	case auditSalt, auditSize:
		if len(rest) != 1 {
			return 0, 0, nil, corruptf("audit key of kind %c with %d bytes", kind, len(rest))
		}
		lo, hi = AuditSaltSize, AuditSaltSize
		if kind == auditSize {
			lo, hi = 8, 8
		}
	default:
		return 0, 0, nil, corruptf("unknown audit record kind %#x", kind)
	}
	if len(v) < crcLen {
		return 0, 0, nil, corruptf("audit record of %d bytes", len(v))
	}
	payload = v[:len(v)-crcLen]
	crc := crc32.Update(crc32.Checksum(rest, castagnoli), castagnoli, payload)
	if crc != binary.LittleEndian.Uint32(v[len(v)-crcLen:]) {
		return 0, 0, nil, corruptf("audit record checksum mismatch")
	}
	if len(payload) < lo || len(payload) > hi {
		return 0, 0, nil, corruptf("audit record of kind %c with a payload of %d bytes", kind, len(payload))
	}
	return kind, index, payload, nil
}

// getAuditRecord reads and checks one audit record; found is false if it
// is missing. The payload is a copy.
func getAuditRecord(r pebble.Reader, shard uint64, kind byte, index uint64) (payload []byte, found bool, err error) {
	var kb [kindPrefixLen + 9]byte
	k := appendAuditKey(kb[:0], shard, kind, index)
	v, closer, err := r.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, storageErr(err)
	}
	defer closer.Close()
	_, _, p, err := decodeAuditRecord(k[kindPrefixLen:], v)
	if err != nil {
		return nil, false, err
	}
	return bytes.Clone(p), true, nil
}

// readAuditState reads the tree size (0 if unset) and salt (nil if unset).
func readAuditState(r pebble.Reader, shard uint64) (size uint64, salt []byte, err error) {
	p, found, err := getAuditRecord(r, shard, auditSize, 0)
	if err != nil {
		return 0, nil, fmt.Errorf("audit size: %w", err)
	}
	if found {
		size = binary.BigEndian.Uint64(p)
	}
	if salt, _, err = getAuditRecord(r, shard, auditSalt, 0); err != nil {
		return 0, nil, fmt.Errorf("audit salt: %w", err)
	}
	return size, salt, nil
}

// readAuditHash reads one stored hash; a missing one is corruption, since
// only hashes of the stored tree are read.
func readAuditHash(r pebble.Reader, shard uint64, index int64) (tlog.Hash, error) {
	var h tlog.Hash
	if index < 0 {
		return h, fmt.Errorf("%w: stored hash index %d", ErrAuditRange, index)
	}
	p, found, err := getAuditRecord(r, shard, auditHash, uint64(index))
	if err != nil {
		return h, fmt.Errorf("audit hash %d: %w", index, err)
	}
	if !found {
		return h, corruptf("audit hash %d missing", index)
	}
	copy(h[:], p)
	return h, nil
}

// auditTreeHash returns the root of the tree of size n stored in r.
func auditTreeHash(r pebble.Reader, shard, n uint64) (tlog.Hash, error) {
	return tlog.TreeHash(int64(n), snapshotHashReader{r: r, shard: shard, size: n})
}

// snapshotHashReader reads the stored hashes of the tree of a given size
// from one consistent view.
type snapshotHashReader struct {
	r     pebble.Reader
	shard uint64
	size  uint64
}

func (s snapshotHashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	limit := tlog.StoredHashCount(int64(s.size))
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		if idx < 0 || idx >= limit {
			return nil, fmt.Errorf("%w: stored hash %d of a tree of size %d", ErrAuditRange, idx, s.size)
		}
		h, err := readAuditHash(s.r, s.shard, idx)
		if err != nil {
			return nil, fmt.Errorf("raftfsm: shard %d: %w", s.shard, err)
		}
		out[i] = h
	}
	return out, nil
}

// AuditView is a consistent, read-only view of a shard's audit stream,
// taken from one Pebble snapshot: its size, root, leaves and hashes all
// belong to the same tree. It holds the snapshot (and so keeps old data
// from being compacted away) until Close. Its methods are safe for
// concurrent use; none may be called after Close.
//
// A damaged or missing record read through the view returns an error
// wrapping ErrCorrupt, never wrong bytes.
type AuditView struct {
	shard uint64
	snap  *pebble.Snapshot
	size  uint64
	once  sync.Once
}

// AuditView opens a view of the shard's audit stream as of the moment of
// the call (all entries applied by then). It refuses on a halted FSM. The
// caller must Close it.
func (f *FSM) AuditView() (*AuditView, error) {
	if err := f.Err(); err != nil {
		return nil, err
	}
	snap := f.db.NewSnapshot()
	p, found, err := getAuditRecord(snap, f.shard, auditSize, 0)
	if err != nil {
		_ = snap.Close()
		return nil, fmt.Errorf("raftfsm: shard %d: audit view: audit size: %w", f.shard, err)
	}
	v := &AuditView{shard: f.shard, snap: snap}
	if found {
		v.size = binary.BigEndian.Uint64(p)
	}
	return v, nil
}

// Size returns the number of leaves in the view's tree.
func (v *AuditView) Size() uint64 { return v.size }

// Root returns the RFC 6962 root hash of the view's tree (that of the empty
// string for an empty tree).
func (v *AuditView) Root() (tlog.Hash, error) {
	return tlog.TreeHash(int64(v.size), v.HashReader())
}

// Leaves returns copies of the leaves [from, min(from+limit, Size())), in
// order. limit must be positive and from at most Size(); otherwise the
// error wraps ErrAuditRange.
func (v *AuditView) Leaves(from uint64, limit int) ([][]byte, error) {
	if limit <= 0 || from > v.size {
		return nil, fmt.Errorf("%w: leaves from %d, limit %d, of a tree of size %d", ErrAuditRange, from, limit, v.size)
	}
	end := min(v.size, from+uint64(limit))
	if end < from { // overflow
		end = v.size
	}
	if end == from {
		return nil, nil
	}
	lower := appendAuditKey(nil, v.shard, auditLeaf, from)
	upper := appendAuditKey(nil, v.shard, auditLeaf, end)
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("raftfsm: shard %d: audit leaves: %w", v.shard, storageErr(err))
	}
	out := make([][]byte, 0, end-from)
	want := from
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		val, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("raftfsm: shard %d: audit leaves: %w", v.shard, storageErr(err))
		}
		_, idx, p, err := decodeAuditRecord(k[kindPrefixLen:], val)
		if err == nil && idx != want {
			err = corruptf("audit leaf %d missing", want)
		}
		if err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("raftfsm: shard %d: audit leaf %d: %w", v.shard, want, err)
		}
		out = append(out, bytes.Clone(p))
		want++
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, fmt.Errorf("raftfsm: shard %d: audit leaves: %w", v.shard, storageErr(err))
	}
	if want != end {
		return nil, fmt.Errorf("raftfsm: shard %d: %w", v.shard, corruptf("audit leaf %d missing", want))
	}
	return out, nil
}

// HashReader returns a reader of the view's stored hashes, for tlog's proof
// functions (tlog.ProveRecord, tlog.ProveTree, tlog.TreeHash) over trees of
// size up to Size(). Reading a hash beyond the view's tree returns an error
// wrapping ErrAuditRange.
func (v *AuditView) HashReader() tlog.HashReader {
	return snapshotHashReader{r: v.snap, shard: v.shard, size: v.size}
}

// Close releases the view's snapshot. It is safe to call more than once.
func (v *AuditView) Close() error {
	var err error
	v.once.Do(func() { err = v.snap.Close() })
	return err
}

// auditTally checks the audit records of a shard read in key order (a
// snapshot stream, a verify pass): each record well formed, keys strictly
// increasing, and at the end exactly the leaves and stored hashes of a tree
// of the recorded size.
type auditTally struct {
	last             []byte // key rest of the previous record
	leaves, hashes   uint64
	maxLeaf, maxHash uint64
	size             uint64
	hasSize          bool
	salt             []byte
}

// add checks one record; rest is its key after the kind prefix.
func (a *auditTally) add(rest, v []byte) error {
	if a.last != nil && bytes.Compare(rest, a.last) <= 0 {
		return corruptf("audit records out of order")
	}
	a.last = append(a.last[:0], rest...)
	kind, index, payload, err := decodeAuditRecord(rest, v)
	if err != nil {
		return err
	}
	switch kind {
	case auditHash:
		a.hashes++
		a.maxHash = index
	case auditLeaf:
		a.leaves++
		a.maxLeaf = index
	case auditSalt:
		a.salt = bytes.Clone(payload)
	case auditSize:
		a.size, a.hasSize = binary.BigEndian.Uint64(payload), true
	}
	return nil
}

// check checks the counts once every record was added.
func (a *auditTally) check() error {
	if !a.hasSize && a.leaves+a.hashes > 0 {
		return corruptf("audit stream of %d leaves and %d hashes without a size record", a.leaves, a.hashes)
	}
	if a.leaves != a.size {
		return corruptf("audit stream of size %d holds %d leaves", a.size, a.leaves)
	}
	if want := uint64(tlog.StoredHashCount(int64(a.size))); a.hashes != want {
		return corruptf("audit stream of size %d holds %d stored hashes, want %d", a.size, a.hashes, want)
	}
	// Keys are unique and the counts match, so indexes within the bounds
	// are exactly 0..count-1.
	if a.leaves > 0 && a.maxLeaf >= a.size {
		return corruptf("audit leaf %d beyond size %d", a.maxLeaf, a.size)
	}
	if a.hashes > 0 && a.maxHash >= a.hashes {
		return corruptf("audit hash %d beyond the tree of size %d", a.maxHash, a.size)
	}
	return nil
}
