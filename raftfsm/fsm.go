package raftfsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
	"golang.org/x/mod/sumdb/tlog"
)

// Options configures an FSM. The zero value works.
type Options struct {
	// Guard, if set, is called at the start of every Restore. A non-nil
	// error refuses the restore: Restore returns an error wrapping both
	// ErrRestoreRefused and the Guard's error, and state is untouched.
	// Residency uses it: a node must not restore a replica it may not hold.
	Guard func() error

	// OnApply, if set, is called on the apply goroutine after each newly
	// applied entry is committed to Pebble, in index order, with the
	// entry's index:
	//   - for a LogCommand entry, cmds holds the commands of that entry that
	//     succeeded; it is non-nil, and empty if none did (a failed
	//     command's audit leaf is appended all the same: AuditSize counts
	//     it);
	//   - for a configuration entry, cmds is nil (no data changed, but
	//     readers waiting on an index see it advance);
	//   - after a successful Restore, it is called once with the restored
	//     applied index and cmds == nil.
	// So a consumer that caches state reloads it when cmds is nil (rare)
	// and otherwise updates it from cmds. Skipped entries are not reported.
	// The commands alias the Raft log's data: copy what you keep, modify
	// nothing. OnApply must not call back into Apply or Restore.
	OnApply func(index uint64, cmds []Command)

	// MaxRestoreBytes bounds the size of the single Pebble batch that
	// Restore builds (roughly the shard's data size plus per-record
	// overhead). 0 means 1 GiB. A larger snapshot fails with
	// ErrSnapshotTooLarge and leaves state untouched.
	MaxRestoreBytes int64
}

const defaultMaxRestoreBytes = 1 << 30

// FSM is the replicated state machine of one shard. It implements
// raft.FSM and raft.BatchingFSM over the node's shared Pebble DB, under the
// shard's key prefix.
//
// Apply, ApplyBatch, Snapshot and Restore are called by Raft from one
// goroutine. AppliedIndex, Get, Scan, Hash and Err are safe to call
// concurrently with them.
//
// State: each user key is stored as version (8 bytes big-endian) followed by
// the value; the version is the Raft index of the entry that last wrote the
// key. The applied index and term are stored in the same Pebble batch as the
// writes of the entries they cover. Batches are not synced: after a crash
// the FSM resumes from the persisted applied index and Raft replays the rest
// from its (synced) log, while entries at or below it are skipped.
//
// Halting: an entry that does not decode, a stored record that does not
// parse, or a failed Pebble write makes the FSM halt instead of skipping the
// entry, because replicas that skip different entries diverge. The failing
// entry's result and every later result carry an error wrapping ErrHalted
// (and the cause); Err returns it from then on; Snapshot, Restore, Get and
// Scan refuse. Raft's own applied index keeps moving, so the server must
// check Err and take the replica out of service; reopening the FSM resumes
// from the last committed batch.
type FSM struct {
	db    *pebble.DB
	shard uint64
	opts  Options

	dataStart, dataEnd   []byte
	auditStart, auditEnd []byte
	appliedKey           []byte

	applied     atomic.Uint64
	appliedTerm atomic.Uint64
	halt        atomic.Pointer[error]
	auditSizeN  atomic.Uint64
	auditSaltP  atomic.Pointer[[]byte]

	// Owned by the apply goroutine.
	written    map[string]pending
	audit      auditBatch
	hashReader tlog.HashReader
	keyBuf     []byte
	valBuf     []byte
}

var (
	_ raft.FSM         = (*FSM)(nil)
	_ raft.BatchingFSM = (*FSM)(nil)
)

// New returns the FSM of shard on db and loads its persisted applied index.
func New(db *pebble.DB, shard uint64, opts Options) (*FSM, error) {
	if opts.MaxRestoreBytes == 0 {
		opts.MaxRestoreBytes = defaultMaxRestoreBytes
	}
	f := &FSM{
		db:         db,
		shard:      shard,
		opts:       opts,
		appliedKey: appliedKey(shard),
		written:    make(map[string]pending),
		audit:      auditBatch{hashes: make(map[int64]tlog.Hash)},
	}
	f.hashReader = tlog.HashReaderFunc(f.readBatchHashes)
	f.dataStart, f.dataEnd = kindSpan(shard, kindData)
	f.auditStart, f.auditEnd = kindSpan(shard, kindAudit)
	snap := db.NewSnapshot()
	defer snap.Close()
	idx, term, err := readApplied(snap, f.appliedKey)
	if err != nil {
		return nil, fmt.Errorf("raftfsm: shard %d: load applied index: %w", shard, err)
	}
	size, salt, err := readAuditState(snap, shard)
	if err != nil {
		return nil, fmt.Errorf("raftfsm: shard %d: load %w", shard, err)
	}
	f.applied.Store(idx)
	f.appliedTerm.Store(term)
	f.setAuditState(size, salt)
	return f, nil
}

// setAuditState replaces the cached audit size and salt.
func (f *FSM) setAuditState(size uint64, salt []byte) {
	f.auditSizeN.Store(size)
	if salt == nil {
		f.auditSaltP.Store(nil)
	} else {
		f.auditSaltP.Store(&salt)
	}
}

// Shard returns the shard id.
func (f *FSM) Shard() uint64 { return f.shard }

// AppliedIndex returns the index of the last entry applied (or restored).
// Every write of entries up to it is visible to Get, Scan and Hash. Raft
// entries the FSM never sees (no-ops, barriers) do not advance it, so it may
// stay below raft's own AppliedIndex.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// Err returns the sticky error of a halted FSM (wrapping ErrHalted), or nil.
func (f *FSM) Err() error {
	if p := f.halt.Load(); p != nil {
		return *p
	}
	return nil
}

func (f *FSM) setHalt(err error) {
	f.halt.CompareAndSwap(nil, &err)
}

// Get returns the value and version of key. found is false (and err nil)
// if the key does not exist. The value is a copy owned by the caller.
func (f *FSM) Get(key []byte) (value []byte, version uint64, found bool, err error) {
	if err := f.Err(); err != nil {
		return nil, 0, false, err
	}
	v, closer, err := f.db.Get(DataKey(f.shard, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, fmt.Errorf("raftfsm: shard %d: get: %w", f.shard, storageErr(err))
	}
	defer closer.Close()
	version, val, err := decodeStored(v)
	if err != nil {
		return nil, 0, false, fmt.Errorf("raftfsm: shard %d: get: %w", f.shard, err)
	}
	return bytes.Clone(val), version, true, nil
}

// KV is one key of a Scan.
type KV struct {
	Key, Value []byte
	Version    uint64
}

// Scan returns the keys in [start, end) in key order, at most limit of them
// (limit <= 0: no limit). A nil end means to the end of the shard. The
// result is one consistent view; its slices are owned by the caller.
func (f *FSM) Scan(start, end []byte, limit int) ([]KV, error) {
	if err := f.Err(); err != nil {
		return nil, err
	}
	if end != nil && bytes.Compare(start, end) >= 0 {
		return nil, nil
	}
	upper := f.dataEnd
	if end != nil {
		upper = DataKey(f.shard, end)
	}
	it, err := f.db.NewIter(&pebble.IterOptions{LowerBound: DataKey(f.shard, start), UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("raftfsm: shard %d: scan: %w", f.shard, storageErr(err))
	}
	var out []KV
	for ok := it.First(); ok && (limit <= 0 || len(out) < limit); ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("raftfsm: shard %d: scan: %w", f.shard, storageErr(err))
		}
		version, val, err := decodeStored(v)
		if err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("raftfsm: shard %d: scan: %w", f.shard, storageErr(err))
		}
		out = append(out, KV{Key: bytes.Clone(it.Key()[kindPrefixLen:]), Value: bytes.Clone(val), Version: version})
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, fmt.Errorf("raftfsm: shard %d: scan: %w", f.shard, storageErr(err))
	}
	return out, nil
}

// Hash returns a deterministic hash of the shard's user data (every key,
// value and version, in key order) and audit stream over one consistent
// view; see Digest. Two replicas at the same applied index have the same
// hash. It works on a halted FSM, for diagnosis.
func (f *FSM) Hash() (uint64, error) {
	d, err := f.Digest()
	return d.Hash, err
}

// Digest summarises a replica's data for comparison with other replicas.
type Digest struct {
	// AppliedIndex is the applied index of the view hashed.
	AppliedIndex uint64
	// Hash is a SHA-256 (first 8 bytes) of every key, value and version in
	// key order, followed, if the shard has an audit stream or salt, by
	// AuditSize, AuditRoot and the salt. A shard without audit state hashes
	// as it did before audit streams existed.
	Hash uint64
	// Keys is the number of keys.
	Keys uint64
	// AuditSize is the number of leaves in the audit stream.
	AuditSize uint64
	// AuditRoot is the RFC 6962 root hash of the audit stream.
	AuditRoot tlog.Hash
}

// Digest hashes the shard's user data and audit stream and reads the
// applied index from one Pebble snapshot, so they belong together: replicas
// at the same applied index must have the same digest. It works on a halted
// FSM.
func (f *FSM) Digest() (Digest, error) {
	snap := f.db.NewSnapshot()
	defer snap.Close()
	idx, _, err := readApplied(snap, f.appliedKey)
	if err != nil {
		return Digest{}, fmt.Errorf("raftfsm: shard %d: digest: %w", f.shard, err)
	}
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: f.dataStart, UpperBound: f.dataEnd})
	if err != nil {
		return Digest{}, fmt.Errorf("raftfsm: shard %d: digest: %w", f.shard, err)
	}
	d := Digest{AppliedIndex: idx}
	h := sha256.New()
	var lens [2 * binary.MaxVarintLen64]byte
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()[kindPrefixLen:]
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return Digest{}, fmt.Errorf("raftfsm: shard %d: digest: %w", f.shard, storageErr(err))
		}
		if len(v) < versionLen {
			_ = it.Close()
			return Digest{}, fmt.Errorf("raftfsm: shard %d: digest: %w", f.shard, corruptf("stored record of %d bytes", len(v)))
		}
		n := binary.PutUvarint(lens[:], uint64(len(k)))
		n += binary.PutUvarint(lens[n:], uint64(len(v)))
		h.Write(lens[:n])
		h.Write(k)
		h.Write(v)
		d.Keys++
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return Digest{}, fmt.Errorf("raftfsm: shard %d: digest: %w", f.shard, storageErr(err))
	}
	size, salt, err := readAuditState(snap, f.shard)
	if err != nil {
		return Digest{}, fmt.Errorf("raftfsm: shard %d: digest: %w", f.shard, err)
	}
	if d.AuditRoot, err = auditTreeHash(snap, f.shard, size); err != nil {
		return Digest{}, fmt.Errorf("raftfsm: shard %d: digest: %w", f.shard, err)
	}
	d.AuditSize = size
	if size > 0 || salt != nil {
		// A marker no data record can produce: a key length of 0.
		h.Write([]byte{0})
		h.Write(binary.BigEndian.AppendUint64(nil, size))
		h.Write(d.AuditRoot[:])
		h.Write(salt)
	}
	d.Hash = binary.BigEndian.Uint64(h.Sum(nil))
	return d, nil
}

// Stored record encoding.
const versionLen = 8

func decodeStored(v []byte) (version uint64, value []byte, err error) {
	if len(v) < versionLen {
		return 0, nil, corruptf("stored record of %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), v[versionLen:], nil
}

// Applied record: index (8 bytes BE), term (8 bytes BE), CRC-32C (4 bytes LE).
const appliedRecordLen = 20

func encodeApplied(dst []byte, index, term uint64) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, index)
	dst = binary.BigEndian.AppendUint64(dst, term)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

func decodeApplied(v []byte) (index, term uint64, err error) {
	if len(v) != appliedRecordLen {
		return 0, 0, corruptf("applied record of %d bytes", len(v))
	}
	if crc32.Checksum(v[:16], castagnoli) != binary.LittleEndian.Uint32(v[16:]) {
		return 0, 0, corruptf("applied record checksum mismatch")
	}
	return binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:]), nil
}

// readApplied reads the applied record; a missing record means (0, 0).
func readApplied(r pebble.Reader, key []byte) (index, term uint64, err error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	defer closer.Close()
	return decodeApplied(v)
}
