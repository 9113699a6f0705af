package raftfsm

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// DBOptions configures OpenDB. The zero value works.
type DBOptions struct {
	// FS is the filesystem Pebble uses. Nil means the operating system's
	// (vfs.Default). Tests pass vfs.NewMem() or an errorfs wrapper to inject
	// faults.
	FS vfs.FS

	// CacheSize is the block cache size in bytes. 0 means 64 MiB.
	CacheSize int64

	// MemTableSize is the size of one memtable in bytes. 0 means 32 MiB.
	MemTableSize uint64

	// GroupCommitWindow is how long a WAL sync waits for more log appends
	// after the previous sync while Busy reports true: the appends of many
	// shards then share one fsync, at the cost of up to this much latency
	// under load. 0 means DefaultGroupCommitWindow; negative turns the wait
	// off.
	GroupCommitWindow time.Duration

	// Busy reports whether the node has enough writes in flight that
	// holding syncs back gathers appends (see GroupCommitWindow). Pebble's
	// WAL calls it after every sync, so it must be cheap; each true is one
	// sync held back. Nil means never: every sync goes at once.
	Busy func() bool

	// Logger receives Pebble's log lines. Nil means slog.Default(). Keys
	// that Pebble formats into its messages are redacted (see OpenDB).
	Logger *slog.Logger
}

const (
	defaultCacheSize    = 64 << 20
	defaultMemTableSize = 32 << 20
	bloomBitsPerKey     = 10

	// DefaultGroupCommitWindow is DBOptions.GroupCommitWindow's default.
	DefaultGroupCommitWindow = time.Millisecond
)

// withDefaults returns o with every zero field replaced by its default.
func (o DBOptions) withDefaults() DBOptions {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.CacheSize == 0 {
		o.CacheSize = defaultCacheSize
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = defaultMemTableSize
	}
	if o.GroupCommitWindow == 0 {
		o.GroupCommitWindow = DefaultGroupCommitWindow
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// OpenDB opens (creating if needed) the node's Pebble DB in dir.
//
// The options suit this workload: many small synced log appends from many
// shards (group commit in Pebble's commit pipeline), unsynced FSM batches,
// point reads for conditions (bloom filters on every level) and prefix
// deletes. Pebble formats keys into some log lines and errors; OpenDB
// installs a comparer that prints shard, kind and a hash of the rest instead
// of the bytes, so no user key reaches a log line.
//
// OpenDB refuses, with an error wrapping ErrCorrupt, a store whose
// write-ahead log is damaged before its synced end (see checkWALs) or that
// Pebble finds corrupt: Pebble alone would open it with the damaged log's
// later records silently dropped.
//
// The caller owns the DB and closes it after every FSM, LogStore and
// snapshot using it is done.
func OpenDB(dir string, opts DBOptions) (*pebble.DB, error) {
	opts = opts.withDefaults()
	cmp := *pebble.DefaultComparer
	cmp.FormatKey = func(k []byte) fmt.Formatter { return redactedKey(k) }
	cmp.FormatValue = func(_, v []byte) fmt.Formatter { return redactedValue(v) }

	po := &pebble.Options{
		FS:                 purgeFS{opts.FS},
		CacheSize:          opts.CacheSize,
		MemTableSize:       opts.MemTableSize,
		FormatMajorVersion: pebble.FormatNewest,
		Comparer:           &cmp,
		Logger:             slogAdapter{l: opts.Logger},
		Cleaner:            pebble.ArchiveCleaner{}, // with purgeFS: delete, never recycle
		EventListener:      &pebble.EventListener{DataCorruption: corruptionLogger(opts.Logger)},
	}
	if opts.GroupCommitWindow > 0 && opts.Busy != nil {
		po.WALMinSyncInterval = groupCommit{window: opts.GroupCommitWindow, busy: opts.Busy}.minSyncInterval
	}
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(bloomBitsPerKey)
	}
	if err := checkWALs(opts.FS, dir); err != nil {
		return nil, err
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		if pebble.IsCorruptionError(err) {
			return nil, fmt.Errorf("%w: the store in %s is damaged: %w", ErrCorrupt, dir, err)
		}
		return nil, fmt.Errorf("raftfsm: open pebble: %w", err)
	}
	// Rotate the WAL: a new store's first WAL is written before Pebble
	// moves to the newest format and lacks the synced offsets that let
	// checkWALs (and Pebble) tell damage from a torn tail; every WAL after
	// a rotation has them.
	if err := db.Flush(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("raftfsm: flush on open: %w", err)
	}
	return db, nil
}

// DeleteShard removes every key of shard (data, applied index, raft log and
// stable store) and leaves other shards alone.
//
// It writes one synced DeleteRange over ShardSpan, then compacts that span
// so that no live sstable still holds the shard's bytes, then flushes the
// memtable so the WAL that carried the shard's last writes is rotated.
// Obsolete sstables and rotated WAL files are deleted by Pebble in the
// background (OpenDB turns WAL recycling off, so an old WAL is removed, not
// reused with stale bytes in its tail).
//
// Call it only after the shard's Raft instance, FSM and LogStore are shut
// down: an open Pebble snapshot (a snapshot being persisted) keeps the data
// alive through compaction, and a LogStore would keep stale cached indexes.
// The data is logically gone once the DeleteRange returns, even if the
// compaction or the flush then fails.
func DeleteShard(db *pebble.DB, shard uint64) error {
	start, end := ShardSpan(shard)
	if err := db.DeleteRange(start, end, pebble.Sync); err != nil {
		return fmt.Errorf("raftfsm: delete shard %d: %w", shard, err)
	}
	if err := db.Compact(context.Background(), start, end, false); err != nil {
		return fmt.Errorf("raftfsm: compact deleted shard %d: %w", shard, err)
	}
	if err := db.Flush(); err != nil {
		return fmt.Errorf("raftfsm: flush after deleting shard %d: %w", shard, err)
	}
	return nil
}

// WAL recycling is turned off: a recycled WAL keeps old bytes in its tail
// until they are overwritten, and a removed replica's data must not survive
// in a live file. Pebble recycles WALs unless its cleaner "needs file
// contents", which its ArchiveCleaner does; that cleaner renames obsolete
// files into an "archive" directory. purgeFS turns exactly those renames into
// removals, so obsolete files (WALs included) are deleted, not kept.
type purgeFS struct{ vfs.FS }

const archiveDir = "archive"

// Rename removes oldname instead when newname is in Pebble's archive
// directory.
func (p purgeFS) Rename(oldname, newname string) error {
	if p.FS.PathBase(p.FS.PathDir(newname)) == archiveDir {
		return p.FS.Remove(oldname)
	}
	return p.FS.Rename(oldname, newname)
}

// redactedKey formats a Pebble key without revealing user bytes: shard
// keys print as r<shard>/<kind>/<detail>, where detail is the log index for
// log keys and the first 8 hex digits of the SHA-256 of the rest otherwise.
type redactedKey []byte

func (k redactedKey) Format(f fmt.State, _ rune) {
	if len(k) < kindPrefixLen || k[0] != ShardKeyPrefix {
		fmt.Fprintf(f, "key(len=%d,sha=%s)", len(k), shortHash(k))
		return
	}
	shard := binary.BigEndian.Uint64(k[1:shardPrefixLen])
	kind, rest := k[shardPrefixLen], k[kindPrefixLen:]
	switch {
	case kind == kindLog && len(rest) == 8:
		fmt.Fprintf(f, "r%d/l/%d", shard, binary.BigEndian.Uint64(rest))
	case kind == kindApplied && len(rest) == 0:
		fmt.Fprintf(f, "r%d/a", shard)
	case kind >= 'a' && kind <= 'z':
		fmt.Fprintf(f, "r%d/%c/sha=%s", shard, kind, shortHash(rest))
	default:
		fmt.Fprintf(f, "r%d/%#x/sha=%s", shard, kind, shortHash(rest))
	}
}

type redactedValue []byte

func (v redactedValue) Format(f fmt.State, _ rune) { fmt.Fprintf(f, "value(len=%d)", len(v)) }

// shortHash returns the first 8 hex digits of the SHA-256 of b; it names a
// key in a message without revealing it.
func shortHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:4])
}

// corruptionLogger logs a damaged file Pebble found while reading. Pebble's
// default handler is fatal and prints the file's key bounds raw; here the
// read that found the damage fails with an error (wrapped with ErrCorrupt by
// storageErr), the replica concerned is taken out of service, and the
// bounds are printed redacted.
func corruptionLogger(l *slog.Logger) func(pebble.DataCorruptionInfo) {
	return func(info pebble.DataCorruptionInfo) {
		l.Error("on-disk corruption found", "component", "pebble", "file", info.Path,
			"from", fmt.Sprint(redactedKey(info.Bounds.Start)), "to", fmt.Sprint(redactedKey(info.Bounds.End.Key)),
			"err", info.Details.Error())
	}
}

// slogAdapter routes Pebble's logger to slog. Fatalf must not return (Pebble
// calls it when continuing would corrupt data), so it panics after logging.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Infof(format string, args ...any) {
	a.l.Info(fmt.Sprintf(format, args...), "component", "pebble")
}

func (a slogAdapter) Errorf(format string, args ...any) {
	a.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (a slogAdapter) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	a.l.Error(msg, "component", "pebble", "fatal", true)
	panic("pebble fatal: " + msg)
}
