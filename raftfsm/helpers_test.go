package raftfsm

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openMem opens a DB on fs (a fresh in-memory FS if nil) and closes it at
// the end of the test unless the test closes it first.
func openMem(t testing.TB, fs vfs.FS) (*pebble.DB, vfs.FS) {
	t.Helper()
	if fs == nil {
		fs = vfs.NewMem()
	}
	db, err := OpenDB("db", DBOptions{FS: fs, CacheSize: 8 << 20, MemTableSize: 4 << 20, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeQuietly(db) })
	return db, fs
}

// closeQuietly closes db unless it is already closed.
func closeQuietly(db *pebble.DB) {
	defer func() { _ = recover() }()
	_ = db.Close()
}

func mustFSM(t testing.TB, db *pebble.DB, shard uint64, opts Options) *FSM {
	t.Helper()
	f, err := New(db, shard, opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func put(k, v string) Op { return Op{Kind: OpPut, Key: []byte(k), Value: []byte(v)} }
func del(k string) Op    { return Op{Kind: OpDelete, Key: []byte(k)} }

func putIf(k, v string, ver uint64) Op {
	op := put(k, v)
	op.HasCond, op.CondVersion = true, ver
	return op
}

func delIf(k string, ver uint64) Op {
	op := del(k)
	op.HasCond, op.CondVersion = true, ver
	return op
}

func cmd(ops ...Op) Command { return Command{Ops: ops} }

func entry(index uint64, cmds ...Command) *raft.Log {
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: EncodeEntry(nil, cmds)}
}

// applyOne applies one entry and returns its results.
func applyOne(t testing.TB, f *FSM, l *raft.Log) []Result {
	t.Helper()
	resp := f.Apply(l)
	rs, ok := resp.([]Result)
	if !ok {
		t.Fatalf("Apply(%d) returned %T", l.Index, resp)
	}
	return rs
}

func mustGet(t testing.TB, f *FSM, k string) (string, uint64, bool) {
	t.Helper()
	v, ver, found, err := f.Get([]byte(k))
	if err != nil {
		t.Fatal(err)
	}
	return string(v), ver, found
}

func mustHash(t testing.TB, f *FSM) uint64 {
	t.Helper()
	h, err := f.Hash()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// dump renders the shard's data for comparisons in failure messages.
func dump(t testing.TB, f *FSM) string {
	t.Helper()
	kvs, err := f.Scan(nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := ""
	for _, kv := range kvs {
		s += fmt.Sprintf("%q=%q@%d ", kv.Key, kv.Value, kv.Version)
	}
	return s
}

// resultString renders a result deterministically.
func resultString(r Result) string {
	var mm *MismatchError
	switch {
	case r.Err == nil:
		return fmt.Sprintf("ok@%d", r.Version)
	case errors.As(r.Err, &mm):
		return fmt.Sprintf("mismatch(op=%d,cur=%d)", mm.OpIndex, mm.Current)
	default:
		return "err:" + r.Err.Error()
	}
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	buf       []byte
	closed    bool
	cancelled bool
}

func (s *memSink) Write(p []byte) (int, error) { s.buf = append(s.buf, p...); return len(p), nil }
func (s *memSink) Close() error                { s.closed = true; return nil }
func (s *memSink) ID() string                  { return "mem" }
func (s *memSink) Cancel() error               { s.cancelled = true; return nil }

// snapshotBytes takes and persists a snapshot of f.
func snapshotBytes(t testing.TB, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	if !sink.closed || sink.cancelled {
		t.Fatalf("sink closed=%v cancelled=%v", sink.closed, sink.cancelled)
	}
	return sink.buf
}
