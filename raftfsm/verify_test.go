package raftfsm

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// diskStore writes n synced log entries to shard 1 of a store on disk and
// closes it; it returns the directory.
func diskStore(t *testing.T, n uint64) string {
	t.Helper()
	dir := t.TempDir()
	db, err := OpenDB(dir, DBOptions{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	s := mustLogStore(t, db, 1)
	for i := uint64(1); i <= n; i++ {
		if err := s.StoreLogs(logsBetween(i, i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// liveWAL returns the path and bytes of the largest WAL in dir.
func liveWAL(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	var path string
	var b []byte
	for _, l := range logs {
		if c, err := os.ReadFile(l); err == nil && len(c) > len(b) {
			path, b = l, c
		}
	}
	if path == "" {
		t.Fatal("no WAL in store")
	}
	return path, b
}

func reopenLastIndex(t *testing.T, dir string) (uint64, error) {
	t.Helper()
	db, err := OpenDB(dir, DBOptions{Logger: quietLogger()})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	li, err := mustLogStore(t, db, 1).LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	return li, nil
}

// A flipped bit anywhere before the WAL's last record makes OpenDB refuse
// the store; Pebble alone would open it with every later record dropped.
func TestWALBitFlipRefusesOpen(t *testing.T) {
	const n = 3000
	for _, frac := range []float64{0.02, 0.3, 0.6, 0.9, 0.97} {
		t.Run(fmt.Sprint(frac), func(t *testing.T) {
			dir := diskStore(t, n)
			path, b := liveWAL(t, dir)
			off := int(float64(len(b)) * frac)
			b[off] ^= 0x04
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			li, err := reopenLastIndex(t, dir)
			if err == nil {
				t.Fatalf("store with a flipped bit at %d of %d opened, last index %d of %d", off, len(b), li, n)
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), filepath.Base(path)) {
				t.Fatalf("error %v: want ErrCorrupt naming the WAL", err)
			}
		})
	}
}

// A torn tail (the last write cut short, or never written) is not damage:
// the store opens with every record before it.
func TestWALTornTailOpens(t *testing.T) {
	const n = 500
	dir := diskStore(t, n)
	path, b := liveWAL(t, dir)
	// Cut inside the last record: its chunk is at the end of the written
	// bytes, followed by zeros or nothing.
	end := len(b)
	for end > 0 && b[end-1] == 0 {
		end--
	}
	if err := os.WriteFile(path, b[:end-5], 0o644); err != nil {
		t.Fatal(err)
	}
	li, err := reopenLastIndex(t, dir)
	if err != nil {
		t.Fatalf("torn tail refused: %v", err)
	}
	if li != n-1 && li != n {
		t.Fatalf("last index %d after a torn tail, want %d", li, n-1)
	}
}

// A flipped byte inside an sstable block is found by VerifyShard on the
// shard that owns the block, with an error wrapping ErrCorrupt, and not on
// a shard whose blocks are intact.
func TestVerifyShardFindsDamagedDataFile(t *testing.T) {
	dir := t.TempDir()
	db, err := OpenDB(dir, DBOptions{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	values := map[uint64][][]byte{}
	for _, shard := range []uint64{1, 2} {
		f := mustFSM(t, db, shard, Options{})
		s := mustLogStore(t, db, shard)
		for i := uint64(1); i <= 60; i++ {
			v := make([]byte, 1024)
			for j := range v {
				v[j] = byte(rng.Uint32())
			}
			values[shard] = append(values[shard], v)
			l := entry(i, cmd(Op{Kind: OpPut, Key: fmt.Appendf(nil, "key-%03d", i), Value: v}))
			if err := s.StoreLog(l); err != nil {
				t.Fatal(err)
			}
			applyOne(t, f, l)
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, shard := range []uint64{1, 2} {
		if c, err := VerifyShard(db, shard); err != nil || c.LogRecords != 60 || c.DataRecords != 60 {
			t.Fatalf("shard %d before damage: %+v, %v", shard, c, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Flip a byte of one of shard 1's stored values in the sstable.
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	flipped := false
	for _, path := range tables {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(b, values[1][30][:64]); i >= 0 {
			b[i+10] ^= 0x01
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			flipped = true
			break
		}
	}
	if !flipped {
		t.Fatal("value not found in any sstable")
	}

	db, err = OpenDB(dir, DBOptions{Logger: quietLogger(), CacheSize: 1 << 20})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer db.Close()
	_, err = VerifyShard(db, 1)
	if !errors.Is(err, ErrCorrupt) || !pebble.IsCorruptionError(err) {
		t.Fatalf("VerifyShard(1) = %v, want a corruption error", err)
	}
	if strings.Contains(err.Error(), "key-") {
		t.Fatalf("error names a user key: %v", err)
	}
	if _, err := VerifyShard(db, 2); err != nil {
		t.Fatalf("VerifyShard(2) on intact blocks: %v", err)
	}
}

// VerifyShard checks the log's own checksums and its continuity too.
func TestVerifyShardFindsDamagedLogRecord(t *testing.T) {
	db, _ := openMem(t, nil)
	s := mustLogStore(t, db, 7)
	if err := s.StoreLogs(logsBetween(1, 20, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyShard(db, 7); err != nil {
		t.Fatal(err)
	}
	// A record whose bytes changed under its CRC.
	k := s.logKey(5)
	good := encodeLog(nil, testLog(5, 1))
	bad := bytes.Clone(good)
	bad[3] ^= 0x80
	if err := db.Set(k, bad, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyShard(db, 7); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "raft log entry 5") {
		t.Fatalf("flipped log record: %v", err)
	}
	// A hole in the log.
	if err := db.Set(k, good, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Delete(s.logKey(9), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyShard(db, 7); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "entries 9 to 9 missing") {
		t.Fatalf("log with a hole and no applied index: %v", err)
	}
	// A hole at or below the applied index is what a follower that
	// installed a snapshot and kept its old tail has: legitimate.
	setApplied := func(index uint64) {
		t.Helper()
		if err := db.Set(appliedKey(7), encodeApplied(nil, index, 1), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	setApplied(8)
	if _, err := VerifyShard(db, 7); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "entries 9 to 9 missing, above applied index 8") {
		t.Fatalf("log with a hole above the applied index: %v", err)
	}
	setApplied(9)
	if c, err := VerifyShard(db, 7); err != nil || c.FirstLog != 1 || c.LastLog != 20 || c.LogRecords != 19 {
		t.Fatalf("log with a hole the applied index covers: %+v, %v", c, err)
	}
	// Only the highest hole matters: one below applied, one above.
	if err := db.Delete(s.logKey(15), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyShard(db, 7); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "entries 15 to 15 missing") {
		t.Fatalf("second hole above the applied index: %v", err)
	}
}
