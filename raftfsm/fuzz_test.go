package raftfsm

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func FuzzDecodeEntry(f *testing.F) {
	for _, cmds := range [][]Command{nil, {cmd()}, sampleEntry(), {cmd(put("k", "v"))}, sampleAuditEntry(), {{Audit: []byte("r")}}} {
		enc := EncodeEntry(nil, cmds)
		f.Add(enc)
		f.Add(enc[:len(enc)/2])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cmds, err := DecodeEntry(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if enc := EncodeEntry(nil, cmds); !bytes.Equal(enc, b) {
			t.Fatalf("decoded entry re-encodes differently:\n in  %x\n out %x", b, enc)
		}
	})
}

func FuzzRestore(f *testing.F) {
	seedDB, _ := openMem(f, nil)
	src := mustFSM(f, seedDB, 1, Options{})
	empty := snapshotBytes(f, src)
	applyOne(f, src, entry(1, cmd(put("a", "1"), put("b", "2")), cmd(put("c", "3"))))
	full := snapshotBytes(f, src)
	applyOne(f, src, entry(2, audited("a", put("d", "4")), audited("b"), Command{AuditSalt: salt(1)}))
	audit := snapshotBytes(f, src)
	for _, b := range [][]byte{empty, full, full[:len(full)-3], full[:snapHeadLen+2], audit, audit[:len(audit)-5]} {
		f.Add(b)
	}

	db, _ := openMem(f, nil)
	dst := mustFSM(f, db, 1, Options{MaxRestoreBytes: 1 << 20})
	f.Fuzz(func(t *testing.T, b []byte) {
		before, err := dst.Hash()
		if err != nil {
			t.Fatal(err)
		}
		applied, auditSize := dst.AppliedIndex(), dst.AuditSize()
		err = dst.Restore(io.NopCloser(bytes.NewReader(b)))
		if err == nil {
			return
		}
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrSnapshotTooLarge) {
			t.Fatalf("error %v wraps neither ErrCorrupt nor ErrSnapshotTooLarge", err)
		}
		after, herr := dst.Hash()
		if herr != nil || after != before || dst.AppliedIndex() != applied || dst.AuditSize() != auditSize {
			t.Fatalf("failed restore changed state (hash err %v)", herr)
		}
	})
}
