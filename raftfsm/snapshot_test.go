package raftfsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
)

// sourceFSM returns an FSM of shard 7 holding a mix of live and deleted keys.
func sourceFSM(t *testing.T) *FSM {
	t.Helper()
	db, _ := openMem(t, nil)
	f := mustFSM(t, db, 7, Options{})
	logs := randomEntries(rand.New(rand.NewPCG(11, 11)), 80)
	f.ApplyBatch(logs)
	applyOne(t, f, entry(81, cmd(put("big", string(bytes.Repeat([]byte("0123456789"), 5000))))))
	if len(dump(t, f)) == 0 {
		t.Fatal("source is empty")
	}
	return f
}

// targetFSM returns an FSM of shard 7 with state of its own, and a
// neighbouring shard 8 in the same DB.
func targetFSM(t *testing.T, opts Options) (*FSM, *FSM) {
	t.Helper()
	db, _ := openMem(t, nil)
	f := mustFSM(t, db, 7, opts)
	applyOne(t, f, entry(3, cmd(put("only-in-target", "x"), put("ka", "target's ka"))))
	neighbour := mustFSM(t, db, 8, Options{})
	applyOne(t, neighbour, entry(9, cmd(put("ka", "shard 8"))))
	return f, neighbour
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	src := sourceFSM(t)
	snapData := snapshotBytes(t, src)

	var restored []uint64
	dst, neighbour := targetFSM(t, Options{OnApply: func(index uint64, cmds []Command) {
		if cmds == nil {
			restored = append(restored, index)
		}
	}})
	neighbourHash := mustHash(t, neighbour)
	if err := dst.Restore(io.NopCloser(bytes.NewReader(snapData))); err != nil {
		t.Fatal(err)
	}
	if dump(t, dst) != dump(t, src) || mustHash(t, dst) != mustHash(t, src) {
		t.Fatalf("restored state differs:\n got %s\nwant %s", dump(t, dst), dump(t, src))
	}
	if _, _, found := mustGet(t, dst, "only-in-target"); found {
		t.Fatal("key absent from the snapshot survived the restore")
	}
	if dst.AppliedIndex() != src.AppliedIndex() || len(restored) != 1 || restored[0] != src.AppliedIndex() {
		t.Fatalf("applied %d (src %d), OnApply restore calls %v", dst.AppliedIndex(), src.AppliedIndex(), restored)
	}
	if mustHash(t, neighbour) != neighbourHash {
		t.Fatal("restore touched another shard")
	}
	// The applied index and term were persisted with the data.
	again := mustFSM(t, dst.db, 7, Options{})
	if again.AppliedIndex() != src.AppliedIndex() || again.appliedTerm.Load() != src.appliedTerm.Load() {
		t.Fatalf("reopened applied %d term %d", again.AppliedIndex(), again.appliedTerm.Load())
	}
	// Applying continues from the snapshot.
	applyOne(t, dst, entry(src.AppliedIndex()+1, cmd(putIf("big", "new", 81))))
	if _, ver, _ := mustGet(t, dst, "big"); ver != src.AppliedIndex()+1 {
		t.Fatalf("CAS on restored version failed: version %d", ver)
	}
}

func TestSnapshotIsPointInTime(t *testing.T) {
	src := sourceFSM(t)
	wantHash, wantIndex := mustHash(t, src), src.AppliedIndex()
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	// Raft keeps applying while Persist runs.
	applyOne(t, src, entry(wantIndex+1, cmd(put("later", "x"), del("big"))))
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	dst, _ := targetFSM(t, Options{})
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.buf))); err != nil {
		t.Fatal(err)
	}
	if mustHash(t, dst) != wantHash || dst.AppliedIndex() != wantIndex {
		t.Fatalf("snapshot saw writes applied after Snapshot(): applied %d", dst.AppliedIndex())
	}
}

// restoreMustFail restores data into a target and checks that it fails
// with want and leaves the target untouched.
func restoreMustFail(t *testing.T, dst *FSM, data []byte, want error, what string) {
	t.Helper()
	beforeHash, beforeIndex := mustHash(t, dst), dst.AppliedIndex()
	err := dst.Restore(io.NopCloser(bytes.NewReader(data)))
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
	if mustHash(t, dst) != beforeHash || dst.AppliedIndex() != beforeIndex {
		t.Fatalf("%s: failed restore changed state", what)
	}
}

func TestRestoreRejectsCorruptSnapshots(t *testing.T) {
	src := sourceFSM(t)
	good := snapshotBytes(t, src)
	dst, _ := targetFSM(t, Options{})

	for n := 0; n < len(good); n += 1 + n/64 {
		restoreMustFail(t, dst, good[:n], ErrCorrupt, fmt.Sprintf("truncated to %d of %d", n, len(good)))
	}
	restoreMustFail(t, dst, good[:len(good)-1], ErrCorrupt, "last byte missing")
	restoreMustFail(t, dst, append(bytes.Clone(good), 0), ErrCorrupt, "one trailing byte")
	restoreMustFail(t, dst, append(bytes.Clone(good), good...), ErrCorrupt, "snapshot twice")

	// Every single-byte flip either fails (state untouched) or, where the
	// byte does not matter to zstd (e.g. a window size hint), restores the
	// exact same state. Header flips always fail.
	benign := 0
	for i := 0; i < len(good); i++ {
		b := bytes.Clone(good)
		b[i] ^= 0xff
		beforeHash := mustHash(t, dst)
		err := dst.Restore(io.NopCloser(bytes.NewReader(b)))
		switch {
		case err == nil && i >= snapHeadLen && mustHash(t, dst) == mustHash(t, src):
			benign++
			dst, _ = targetFSM(t, Options{})
		case err == nil:
			t.Fatalf("flip at %d restored different state", i)
		case !errors.Is(err, ErrCorrupt):
			t.Fatalf("flip at %d: err %v does not wrap ErrCorrupt", i, err)
		case mustHash(t, dst) != beforeHash:
			t.Fatalf("flip at %d: failed restore changed state", i)
		}
	}
	t.Logf("%d bytes, %d benign flips", len(good), benign)
	if benign > 4 {
		t.Fatalf("%d of %d flips went undetected", benign, len(good))
	}

	// A valid snapshot of another shard.
	other, _ := openMem(t, nil)
	f9 := mustFSM(t, other, 9, Options{})
	applyOne(t, f9, entry(1, cmd(put("a", "1"))))
	restoreMustFail(t, dst, snapshotBytes(t, f9), ErrCorrupt, "wrong shard")
}

func TestRestoreGuardRefuses(t *testing.T) {
	src := sourceFSM(t)
	data := snapshotBytes(t, src)
	errNotPermitted := errors.New("locality not permitted")
	dst, _ := targetFSM(t, Options{Guard: func() error { return errNotPermitted }})
	r := &countingReader{r: bytes.NewReader(data)}
	before := mustHash(t, dst)
	err := dst.Restore(io.NopCloser(r))
	if !errors.Is(err, errNotPermitted) || !errors.Is(err, ErrRestoreRefused) {
		t.Fatalf("err = %v", err)
	}
	if r.n != 0 || mustHash(t, dst) != before || dst.AppliedIndex() != 3 {
		t.Fatalf("refused restore read %d bytes or changed state", r.n)
	}
}

func TestRestoreTooLarge(t *testing.T) {
	src := sourceFSM(t)
	dst, _ := targetFSM(t, Options{MaxRestoreBytes: 10 << 10})
	restoreMustFail(t, dst, snapshotBytes(t, src), ErrSnapshotTooLarge, "over MaxRestoreBytes")
}

func TestRestoreSourceErrorIsNotCorruption(t *testing.T) {
	src := sourceFSM(t)
	data := snapshotBytes(t, src)
	dst, _ := targetFSM(t, Options{})
	errDisk := errors.New("disk on fire")
	for _, at := range []int{10, len(data) / 2} {
		err := dst.Restore(io.NopCloser(io.MultiReader(bytes.NewReader(data[:at]), errReader{errDisk})))
		if !errors.Is(err, errDisk) || errors.Is(err, ErrCorrupt) {
			t.Fatalf("failing at %d: err = %v", at, err)
		}
	}
	if dst.AppliedIndex() != 3 {
		t.Fatal("failed restore changed the applied index")
	}
}

func TestNeedsRestore(t *testing.T) {
	src := sourceFSM(t)
	store, err := raft.NewFileSnapshotStore(filepath.Join(t.TempDir(), "snaps"), 1, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	dst, _ := targetFSM(t, Options{})
	if need, err := dst.NeedsRestore(store); err != nil || need {
		t.Fatalf("empty store: need=%v err=%v", need, err)
	}
	// As raft does on InstallSnapshot: write the snapshot to the store, and
	// (here) crash before the FSM restored it.
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink, err := store.Create(raft.SnapshotVersionMax, src.AppliedIndex()+2, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if need, err := dst.NeedsRestore(store); err != nil || !need {
		t.Fatalf("FSM behind the snapshot: need=%v err=%v", need, err)
	}
	if need, err := src.NeedsRestore(store); err != nil || need {
		t.Fatalf("FSM at the snapshot (raft's index above the FSM's): need=%v err=%v", need, err)
	}
	_, rc, err := store.Open(sink.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := dst.Restore(rc); err != nil {
		t.Fatal(err)
	}
	if need, err := dst.NeedsRestore(store); err != nil || need {
		t.Fatalf("after restore: need=%v err=%v", need, err)
	}
	// A snapshot of another shard in this shard's store is an error.
	wrong, _ := openMem(t, nil)
	if _, err := mustFSM(t, wrong, 8, Options{}).NeedsRestore(store); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("other shard: err = %v", err)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
