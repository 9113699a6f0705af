package raftfsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/mod/sumdb/tlog"
)

// mth is the RFC 6962 Merkle tree hash of leaves, computed recursively:
// the naive reference the stored tree is compared with.
func mth(leaves [][]byte) tlog.Hash {
	switch n := len(leaves); n {
	case 0:
		return tlog.Hash(sha256Empty())
	case 1:
		return tlog.RecordHash(leaves[0])
	default:
		k := 1
		for k*2 < n {
			k *= 2
		}
		return tlog.NodeHash(mth(leaves[:k]), mth(leaves[k:]))
	}
}

func sha256Empty() tlog.Hash {
	h, _ := tlog.TreeHash(0, nil)
	return h
}

// memTree is a tlog tree in memory, for the other independent root.
type memTree struct {
	n      int64
	hashes []tlog.Hash
}

func (m *memTree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = m.hashes[x]
	}
	return out, nil
}

func (m *memTree) add(t testing.TB, leaf []byte) {
	hs, err := tlog.StoredHashes(m.n, leaf, m)
	if err != nil {
		t.Fatal(err)
	}
	m.hashes = append(m.hashes, hs...)
	m.n++
}

func audited(leaf string, ops ...Op) Command {
	return Command{Ops: ops, Audit: []byte(leaf)}
}

func salt(b byte) []byte { return bytes.Repeat([]byte{b}, AuditSaltSize) }

func mustView(t testing.TB, f *FSM) *AuditView {
	t.Helper()
	v, err := f.AuditView()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

func mustRoot(t testing.TB, v *AuditView) tlog.Hash {
	t.Helper()
	r, err := v.Root()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func allLeaves(t testing.TB, v *AuditView) [][]byte {
	t.Helper()
	ls, err := v.Leaves(0, int(v.Size())+1)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// auditLogs returns n entries of 1 to 4 commands, each with a distinct
// leaf, mixing writes, reads (audit only), barriers and failing CAS.
func auditLogs(rng *rand.Rand, n int) ([]*raft.Log, [][]byte) {
	var logs []*raft.Log
	var leaves [][]byte
	for i := 1; i <= n; i++ {
		var cmds []Command
		for j := 0; j < 1+rng.IntN(4); j++ {
			leaf := []byte(fmt.Sprintf("leaf %d.%d %s", i, j, bytes.Repeat([]byte{'x'}, rng.IntN(300))))
			k := fmt.Sprintf("k%d", rng.IntN(8))
			switch rng.IntN(4) {
			case 0:
				cmds = append(cmds, audited(string(leaf), put(k, "v")))
			case 1:
				cmds = append(cmds, audited(string(leaf)))
			case 2:
				cmds = append(cmds, audited(string(leaf), putIf(k, "v", uint64(rng.IntN(3)))))
			default:
				cmds = append(cmds, cmd(put(k, "w")))
				leaf = nil
			}
			if leaf != nil {
				leaves = append(leaves, leaf)
			}
		}
		logs = append(logs, &raft.Log{Index: uint64(i), Term: 1, Type: raft.LogCommand, Data: EncodeEntry(nil, cmds)})
	}
	return logs, leaves
}

func TestAuditRootMatchesIndependentTrees(t *testing.T) {
	db, _ := openMem(t, nil)
	f := mustFSM(t, db, 1, Options{})
	rng := rand.New(rand.NewPCG(3, 4))
	logs, leaves := auditLogs(rng, 80)
	// Batches of varying size, so that hashes come from the batch overlay
	// and from the DB.
	for i := 0; i < len(logs); {
		n := 1 + rng.IntN(9)
		f.ApplyBatch(logs[i:min(i+n, len(logs))])
		i += n
	}
	if f.AuditSize() != uint64(len(leaves)) {
		t.Fatalf("AuditSize %d, want %d", f.AuditSize(), len(leaves))
	}
	v := mustView(t, f)
	var mem memTree
	for _, l := range leaves {
		mem.add(t, l)
	}
	want, err := tlog.TreeHash(mem.n, &mem)
	if err != nil {
		t.Fatal(err)
	}
	if want != mth(leaves) {
		t.Fatal("the two reference trees disagree")
	}
	if got := mustRoot(t, v); got != want {
		t.Fatalf("root %v, want %v", got, want)
	}
	if got := allLeaves(t, v); !equalLeaves(got, leaves) {
		t.Fatalf("leaves differ: got %d, want %d", len(got), len(leaves))
	}
	// Roots of every earlier size, and inclusion proofs, from the view.
	for _, size := range []int64{1, 2, 3, 7, 64, int64(len(leaves))} {
		root, err := tlog.TreeHash(size, v.HashReader())
		if err != nil || root != mth(leaves[:size]) {
			t.Fatalf("root of size %d: %v, %v", size, root, err)
		}
		for _, i := range []int64{0, size / 2, size - 1} {
			p, err := tlog.ProveRecord(size, i, v.HashReader())
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckRecord(p, size, root, i, tlog.RecordHash(leaves[i])); err != nil {
				t.Fatalf("proof of %d in %d: %v", i, size, err)
			}
		}
	}
	d, err := f.Digest()
	if err != nil || d.AuditSize != uint64(len(leaves)) || d.AuditRoot != want {
		t.Fatalf("digest %+v, %v", d, err)
	}
}

func equalLeaves(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func TestAuditLeafOfFailedCommandIsAppended(t *testing.T) {
	db, _ := openMem(t, nil)
	f := mustFSM(t, db, 1, Options{})
	applyOne(t, f, entry(1, cmd(put("k", "v"))))
	before := dump(t, f)
	rs := applyOne(t, f, entry(2,
		audited("cas", putIf("k", "x", 9)),   // mismatch
		audited("first", put("j", "1")),      // ok
		audited("conflict", put("j", "2")),   // same key in the entry
		audited("invalid ops", put("", "v")), // empty key
		audited("read"),                      // audit only
		Command{Ops: []Op{put("z", "1")}, Audit: make([]byte, MaxAuditLeafSize+1)}, // invalid leaf
		Command{Audit: []byte("bad salt"), AuditSalt: []byte("short")},             // invalid salt
	))
	var mm *MismatchError
	checks := []struct {
		ok, audited bool
		index       uint64
		err         error
	}{
		{false, true, 0, ErrVersionMismatch},
		{true, true, 1, nil},
		{false, true, 2, ErrConflict},
		{false, true, 3, ErrInvalidCommand},
		{true, true, 4, nil},
		{false, false, 0, ErrInvalidCommand},
		{false, false, 0, ErrInvalidCommand},
	}
	for i, c := range checks {
		r := rs[i]
		if (r.Err == nil) != c.ok || (c.err != nil && !errors.Is(r.Err, c.err)) || r.Audited != c.audited || r.AuditIndex != c.index {
			t.Errorf("command %d: %+v", i, r)
		}
	}
	if !errors.As(rs[0].Err, &mm) || mm.Current != 1 {
		t.Fatalf("CAS result %v", rs[0].Err)
	}
	if rs[1].Version != 2 || rs[4].Version != 2 {
		t.Fatalf("versions %d %d", rs[1].Version, rs[4].Version)
	}
	if got, want := dump(t, f), `"j"="1"@2 `+before; got != want {
		t.Fatalf("data %s, want %s", got, want)
	}
	v := mustView(t, f)
	want := [][]byte{[]byte("cas"), []byte("first"), []byte("conflict"), []byte("invalid ops"), []byte("read")}
	if got := allLeaves(t, v); !equalLeaves(got, want) {
		t.Fatalf("leaves %q", got)
	}
	if f.AuditSalt() != nil {
		t.Fatal("invalid salt was set")
	}
}

func TestAuditSaltIsSetOnce(t *testing.T) {
	db, fs := openMem(t, nil)
	f := mustFSM(t, db, 1, Options{})
	rs := applyOne(t, f, entry(1, Command{AuditSalt: salt(1)}, Command{AuditSalt: salt(2), Audit: []byte("a")}))
	if rs[0].Err != nil || rs[1].Err != nil || !rs[1].Audited {
		t.Fatalf("results %v", rs)
	}
	if !bytes.Equal(f.AuditSalt(), salt(1)) {
		t.Fatal("first salt not kept within the entry")
	}
	if rs := applyOne(t, f, entry(2, Command{AuditSalt: salt(3)})); rs[0].Err != nil {
		t.Fatalf("a second salt is an error: %v", rs[0].Err)
	}
	if !bytes.Equal(f.AuditSalt(), salt(1)) || f.AuditSize() != 1 {
		t.Fatalf("salt %x, size %d", f.AuditSalt(), f.AuditSize())
	}
	// A salt of a failed command is still set: it is not part of the ops.
	g := mustFSM(t, db, 2, Options{})
	c := Command{Ops: []Op{putIf("k", "v", 5)}, AuditSalt: salt(4)}
	if rs := applyOne(t, g, entry(1, c)); !errors.Is(rs[0].Err, ErrVersionMismatch) || !bytes.Equal(g.AuditSalt(), salt(4)) {
		t.Fatalf("salt with failing ops: %v, %x", rs[0].Err, g.AuditSalt())
	}

	// Restart: size and salt are loaded.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, _ = openMem(t, fs)
	f = mustFSM(t, db, 1, Options{})
	if !bytes.Equal(f.AuditSalt(), salt(1)) || f.AuditSize() != 1 {
		t.Fatalf("after reopen: salt %x, size %d", f.AuditSalt(), f.AuditSize())
	}
	if rs := applyOne(t, f, entry(3, audited("b"))); rs[0].AuditIndex != 1 {
		t.Fatalf("append after reopen at %d", rs[0].AuditIndex)
	}
	if got := allLeaves(t, mustView(t, f)); !equalLeaves(got, [][]byte{[]byte("a"), []byte("b")}) {
		t.Fatalf("leaves after reopen %q", got)
	}
}

func TestAuditReplicasHaveTheSameDigest(t *testing.T) {
	logs, leaves := auditLogs(rand.New(rand.NewPCG(5, 6)), 50)
	logs[0].Data = EncodeEntry(nil, []Command{{AuditSalt: salt(7)}})
	var digests []Digest
	for _, chunk := range []int{1, 7, 50} {
		db, _ := openMem(t, nil)
		f := mustFSM(t, db, 1, Options{})
		for i := 0; i < len(logs); i += chunk {
			f.ApplyBatch(logs[i:min(i+chunk, len(logs))])
		}
		d, err := f.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	for _, d := range digests[1:] {
		if d != digests[0] {
			t.Fatalf("digests differ: %+v vs %+v", d, digests[0])
		}
	}
	if digests[0].AuditSize == 0 || digests[0].AuditSize > uint64(len(leaves)) {
		t.Fatalf("audit size %d of at most %d leaves", digests[0].AuditSize, len(leaves))
	}

	// The hash covers the audit stream: the same data with another leaf,
	// or another salt, hashes differently; with no audit state, as before.
	hashOf := func(cmds ...Command) uint64 {
		db, _ := openMem(t, nil)
		f := mustFSM(t, db, 1, Options{})
		applyOne(t, f, entry(1, cmds...))
		return mustHash(t, f)
	}
	plain := hashOf(cmd(put("k", "v")))
	a := hashOf(audited("a", put("k", "v")))
	b := hashOf(audited("b", put("k", "v")))
	s1 := hashOf(cmd(put("k", "v")), Command{AuditSalt: salt(1)})
	s2 := hashOf(cmd(put("k", "v")), Command{AuditSalt: salt(2)})
	if plain == a || a == b || s1 == s2 || plain == s1 {
		t.Fatalf("hash ignores the audit stream: %x %x %x %x %x", plain, a, b, s1, s2)
	}
}

func TestAuditSnapshotRoundTrip(t *testing.T) {
	srcDB, _ := openMem(t, nil)
	src := mustFSM(t, srcDB, 1, Options{})
	logs, _ := auditLogs(rand.New(rand.NewPCG(8, 9)), 30)
	logs[3].Data = EncodeEntry(nil, []Command{{AuditSalt: salt(5), Audit: []byte("salted")}})
	src.ApplyBatch(logs)
	data := snapshotBytes(t, src)
	if data[8] != snapV2 {
		t.Fatalf("snapshot with an audit stream has version %d", data[8])
	}

	dstDB, _ := openMem(t, nil)
	var notified []uint64
	dst := mustFSM(t, dstDB, 1, Options{OnApply: func(i uint64, _ []Command) { notified = append(notified, i) }})
	applyOne(t, dst, entry(1, audited("stale"), Command{AuditSalt: salt(9)}))
	if err := dst.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	want, err := src.Digest()
	if err != nil {
		t.Fatal(err)
	}
	got, err := dst.Digest()
	if err != nil || got != want {
		t.Fatalf("restored digest %+v, want %+v (%v)", got, want, err)
	}
	if dst.AuditSize() != src.AuditSize() || !bytes.Equal(dst.AuditSalt(), salt(5)) {
		t.Fatalf("cached size %d salt %x", dst.AuditSize(), dst.AuditSalt())
	}
	if !equalLeaves(allLeaves(t, mustView(t, dst)), allLeaves(t, mustView(t, src))) {
		t.Fatal("restored leaves differ")
	}
	if _, err := VerifyShard(dstDB, 1); err != nil {
		t.Fatal(err)
	}
	// Both go on identically.
	next := entry(31, audited("after"), Command{AuditSalt: salt(6)})
	applyOne(t, src, next)
	applyOne(t, dst, next)
	if a, b := mustDigest(t, src), mustDigest(t, dst); a != b {
		t.Fatalf("after restore: %+v vs %+v", a, b)
	}

	// A shard without audit state writes version 1, and restoring it
	// removes the target's audit stream.
	plainDB, _ := openMem(t, nil)
	plain := mustFSM(t, plainDB, 1, Options{})
	applyOne(t, plain, entry(1, cmd(put("a", "1"))))
	v1 := snapshotBytes(t, plain)
	if v1[8] != snapV1 {
		t.Fatalf("snapshot without audit state has version %d", v1[8])
	}
	if err := dst.Restore(io.NopCloser(bytes.NewReader(v1))); err != nil {
		t.Fatal(err)
	}
	if dst.AuditSize() != 0 || dst.AuditSalt() != nil || mustHash(t, dst) != mustHash(t, plain) {
		t.Fatalf("after v1 restore: size %d salt %x", dst.AuditSize(), dst.AuditSalt())
	}
	if v := mustView(t, dst); v.Size() != 0 || mustRoot(t, v) != mth(nil) {
		t.Fatal("audit view after v1 restore is not empty")
	}
	if c, err := VerifyShard(dstDB, 1); err != nil || c.AuditRecords != 0 {
		t.Fatalf("verify after v1 restore: %+v, %v", c, err)
	}
}

func mustDigest(t testing.TB, f *FSM) Digest {
	t.Helper()
	d, err := f.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// snapRecord is one record of a hand-built snapshot stream.
type snapRecord struct {
	tag  byte
	k, v []byte
}

// buildSnapshot makes a snapshot stream of shard 7 with valid framing
// (header, zstd, trailer) around records, so that only the checks of the
// records themselves can reject it.
func buildSnapshot(t testing.TB, version byte, index uint64, recs []snapRecord) []byte {
	t.Helper()
	var body []byte
	var crc uint32
	for _, r := range recs {
		b := appendRecord(nil, r.tag, r.k, r.v)
		crc = crc32.Update(crc, castagnoli, b)
		body = append(body, b...)
	}
	body = append(body, tagTrailer)
	body = binary.BigEndian.AppendUint64(body, uint64(len(recs)))
	body = binary.LittleEndian.AppendUint32(body, crc)
	return append(snapHeader{version: version, shard: 7, index: index, term: 1}.append(nil), zstdCompress(t, body)...)
}

// auditRecords returns the audit records of shard as snapshot records.
func auditRecords(t testing.TB, db *pebble.DB, shard uint64) []snapRecord {
	t.Helper()
	start, end := kindSpan(shard, kindAudit)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []snapRecord
	for ok := it.First(); ok; ok = it.Next() {
		out = append(out, snapRecord{tagAudit, bytes.Clone(it.Key()[kindPrefixLen:]), bytes.Clone(it.Value())})
	}
	return out
}

func TestRestoreRejectsBadAuditRecords(t *testing.T) {
	srcDB, _ := openMem(t, nil)
	src := mustFSM(t, srcDB, 7, Options{})
	applyOne(t, src, entry(1, audited("a", put("k", "v")), audited("b"), audited("c"), Command{AuditSalt: salt(1)}))
	recs := auditRecords(t, srcDB, 7)
	data := snapRecord{tagRecord, []byte("k"), binary.BigEndian.AppendUint64(nil, 1)}
	dst, neighbour := targetFSM(t, Options{})
	applyOne(t, dst, entry(4, audited("old")))
	applyOne(t, neighbour, entry(10, audited("neighbour's")))

	// The hand-built stream of the same records restores.
	good := buildSnapshot(t, snapV2, 5, append([]snapRecord{data}, recs...))
	if err := dst.Restore(io.NopCloser(bytes.NewReader(good))); err != nil {
		t.Fatal(err)
	}
	if mustDigest(t, dst).AuditRoot != mustDigest(t, src).AuditRoot {
		t.Fatal("hand-built snapshot restored another tree")
	}
	if ls := allLeaves(t, mustView(t, neighbour)); len(ls) != 1 || string(ls[0]) != "neighbour's" {
		t.Fatalf("restore touched the neighbouring shard's audit stream: %q", ls)
	}
	applyOne(t, dst, entry(6, audited("old")))

	without := func(i int) []snapRecord {
		return append(append([]snapRecord{data}, recs[:i]...), recs[i+1:]...)
	}
	find := func(kind byte) int {
		for i, r := range recs {
			if r.k[0] == kind {
				return i
			}
		}
		t.Fatalf("no audit record of kind %c", kind)
		return 0
	}
	flipped := func(i, at int) []snapRecord {
		rs := append([]snapRecord{data}, recs...)
		r := rs[1+i]
		r.v = bytes.Clone(r.v)
		r.v[at] ^= 1
		rs[1+i] = r
		return rs
	}
	leaf, hash, size := find(auditLeaf), find(auditHash), find(auditSize)
	resized := append([]snapRecord{data}, recs...)
	resized[1+size] = snapRecord{tagAudit, recs[size].k, appendAuditValue(nil, recs[size].k, binary.BigEndian.AppendUint64(nil, 2))}
	swapped := append([]snapRecord{data}, recs...)
	swapped[1+leaf], swapped[2+leaf] = swapped[2+leaf], swapped[1+leaf]
	moved := append([]snapRecord{data}, recs...)
	mk := bytes.Clone(recs[leaf].k)
	mk[len(mk)-1] += 10
	moved[1+leaf] = snapRecord{tagAudit, mk, recs[leaf].v}
	cases := map[string][]byte{
		"missing leaf":          buildSnapshot(t, snapV2, 5, without(leaf)),
		"missing hash":          buildSnapshot(t, snapV2, 5, without(hash)),
		"missing size":          buildSnapshot(t, snapV2, 5, without(size)),
		"flipped leaf":          buildSnapshot(t, snapV2, 5, flipped(leaf, 0)),
		"flipped hash crc":      buildSnapshot(t, snapV2, 5, flipped(hash, tlog.HashSize)),
		"smaller size":          buildSnapshot(t, snapV2, 5, resized),
		"out of order":          buildSnapshot(t, snapV2, 5, swapped),
		"leaf moved":            buildSnapshot(t, snapV2, 5, moved),
		"audit in v1":           buildSnapshot(t, snapV1, 5, append([]snapRecord{data}, recs...)),
		"data after audit":      buildSnapshot(t, snapV2, 5, append(append([]snapRecord{}, recs...), data)),
		"unknown audit kind":    buildSnapshot(t, snapV2, 5, []snapRecord{{tagAudit, []byte{'q'}, appendAuditValue(nil, []byte{'q'}, nil)}}),
		"audit key too long":    buildSnapshot(t, snapV2, 5, []snapRecord{{tagAudit, make([]byte, 10), make([]byte, 8)}}),
		"hashes without leaves": buildSnapshot(t, snapV2, 5, []snapRecord{recs[hash]}),
	}
	for name, b := range cases {
		restoreMustFail(t, dst, b, ErrCorrupt, name)
		if dst.AuditSize() != 4 {
			t.Fatalf("%s: cached size changed to %d", name, dst.AuditSize())
		}
	}
}

func TestVerifyShardChecksAuditStream(t *testing.T) {
	setup := func(t *testing.T) *pebble.DB {
		db, _ := openMem(t, nil)
		f := mustFSM(t, db, 1, Options{})
		for i := uint64(1); i <= 5; i++ {
			applyOne(t, f, entry(i, audited(fmt.Sprintf("leaf %d", i), put("k", "v")), Command{AuditSalt: salt(1)}))
		}
		c, err := VerifyShard(db, 1)
		if err != nil || c.AuditSize != 5 || c.AuditRecords != 5+int(tlog.StoredHashCount(5))+2 {
			t.Fatalf("clean store: %+v, %v", c, err)
		}
		return db
	}
	leafKey := func(i uint64) []byte { return appendAuditKey(nil, 1, auditLeaf, i) }
	tamper := map[string]func(t *testing.T, db *pebble.DB) error{
		"deleted leaf": func(_ *testing.T, db *pebble.DB) error { return db.Delete(leafKey(2), nil) },
		"deleted hash": func(_ *testing.T, db *pebble.DB) error {
			return db.Delete(appendAuditKey(nil, 1, auditHash, 3), nil)
		},
		"truncated size": func(_ *testing.T, db *pebble.DB) error {
			k := appendAuditKey(nil, 1, auditSize, 0)
			return db.Set(k, appendAuditValue(nil, k[kindPrefixLen:], binary.BigEndian.AppendUint64(nil, 4)), nil)
		},
		"flipped leaf byte": func(t *testing.T, db *pebble.DB) error {
			v, closer, err := db.Get(leafKey(1))
			if err != nil {
				return err
			}
			b := bytes.Clone(v)
			closer.Close()
			b[0] ^= 0x20
			return db.Set(leafKey(1), b, nil)
		},
		"extra leaf": func(_ *testing.T, db *pebble.DB) error {
			k := leafKey(9)
			return db.Set(k, appendAuditValue(nil, k[kindPrefixLen:], []byte("x")), nil)
		},
		"bad salt": func(_ *testing.T, db *pebble.DB) error {
			return db.Set(appendAuditKey(nil, 1, auditSalt, 0), []byte("short"), nil)
		},
	}
	for name, fn := range tamper {
		t.Run(name, func(t *testing.T) {
			db := setup(t)
			if err := fn(t, db); err != nil {
				t.Fatal(err)
			}
			if _, err := VerifyShard(db, 1); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("VerifyShard: %v", err)
			}
			_, damaged, err := VerifyStore(db)
			if err != nil || !errors.Is(damaged[1], ErrCorrupt) {
				t.Fatalf("VerifyStore: %v, %v", damaged, err)
			}
		})
	}
}

func TestAuditViewReportsDamage(t *testing.T) {
	db, _ := openMem(t, nil)
	f := mustFSM(t, db, 1, Options{})
	applyOne(t, f, entry(1, audited("a"), audited("b"), audited("c")))
	k := appendAuditKey(nil, 1, auditLeaf, 1)
	v, closer, err := db.Get(k)
	if err != nil {
		t.Fatal(err)
	}
	b := bytes.Clone(v)
	closer.Close()
	b[0] ^= 1
	if err := db.Set(k, b, nil); err != nil {
		t.Fatal(err)
	}
	view := mustView(t, f)
	if _, err := view.Leaves(0, 3); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("flipped leaf: %v", err)
	}
	if ls, err := view.Leaves(2, 5); err != nil || len(ls) != 1 || string(ls[0]) != "c" {
		t.Fatalf("undamaged leaf: %q, %v", ls, err)
	}
	if err := db.Delete(k, nil); err != nil {
		t.Fatal(err)
	}
	view = mustView(t, f)
	if _, err := view.Leaves(0, 3); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("missing leaf: %v", err)
	}
	if err := db.Delete(appendAuditKey(nil, 1, auditHash, uint64(tlog.StoredHashIndex(0, 2))), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := mustView(t, f).Root(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("root over a missing hash: %v", err)
	}
	// Appending over a missing hash the new leaf needs halts the FSM.
	rs := applyOne(t, f, entry(2, audited("d")))
	if !errors.Is(rs[0].Err, ErrHalted) || !errors.Is(rs[0].Err, ErrCorrupt) {
		t.Fatalf("append over a missing hash: %v", rs[0].Err)
	}
	if _, err := f.AuditView(); !errors.Is(err, ErrHalted) {
		t.Fatalf("AuditView of a halted FSM: %v", err)
	}
	if f.AuditSize() != 3 {
		t.Fatalf("size after the failed batch %d", f.AuditSize())
	}
}

func TestAuditViewRanges(t *testing.T) {
	db, _ := openMem(t, nil)
	f := mustFSM(t, db, 1, Options{})
	empty := mustView(t, f)
	if empty.Size() != 0 || mustRoot(t, empty) != mth(nil) {
		t.Fatal("empty view")
	}
	if ls, err := empty.Leaves(0, 10); err != nil || ls != nil {
		t.Fatalf("leaves of an empty view: %q, %v", ls, err)
	}
	applyOne(t, f, entry(1, audited("a"), audited("b"), audited("c")))
	v := mustView(t, f)
	applyOne(t, f, entry(2, audited("d")))
	if v.Size() != 3 {
		t.Fatalf("view size moved to %d", v.Size())
	}
	for _, tc := range []struct {
		from  uint64
		limit int
		want  string
	}{{0, 1, "a"}, {1, 2, "bc"}, {1, 100, "bc"}, {3, 1, ""}, {2, 1 << 62, "c"}} {
		ls, err := v.Leaves(tc.from, tc.limit)
		if err != nil || string(bytes.Join(ls, nil)) != tc.want {
			t.Errorf("Leaves(%d, %d) = %q, %v; want %q", tc.from, tc.limit, ls, err, tc.want)
		}
	}
	ls, _ := v.Leaves(0, 1)
	ls[0][0] = 'X'
	if again, _ := v.Leaves(0, 1); string(again[0]) != "a" {
		t.Fatal("Leaves returned shared bytes")
	}
	for _, bad := range [][2]int{{4, 1}, {0, 0}, {0, -1}} {
		if _, err := v.Leaves(uint64(bad[0]), bad[1]); !errors.Is(err, ErrAuditRange) {
			t.Errorf("Leaves(%d, %d): %v", bad[0], bad[1], err)
		}
	}
	if _, err := v.HashReader().ReadHashes([]int64{tlog.StoredHashCount(3)}); !errors.Is(err, ErrAuditRange) {
		t.Fatalf("hash beyond the view: %v", err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

// TestAuditViewIsConsistentUnderApply reads views while entries apply: each
// view's root must be the tree hash of its own leaves, and sizes only grow.
func TestAuditViewIsConsistentUnderApply(t *testing.T) {
	db, _ := openMem(t, nil)
	f := mustFSM(t, db, 1, Options{})
	logs, leaves := auditLogs(rand.New(rand.NewPCG(10, 11)), 150)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := 0; i < len(logs); i += 3 {
			f.ApplyBatch(logs[i:min(i+3, len(logs))])
		}
	}()
	var last uint64
	views := 0
	for stop := false; !stop; views++ {
		select {
		case <-done:
			stop = true
		default:
		}
		v, err := f.AuditView()
		if err != nil {
			t.Fatal(err)
		}
		ls, err := v.Leaves(0, int(v.Size())+1)
		if err != nil {
			t.Fatal(err)
		}
		root, err := v.Root()
		if err != nil {
			t.Fatal(err)
		}
		_ = v.Close()
		if uint64(len(ls)) != v.Size() || root != mth(ls) || v.Size() < last {
			t.Fatalf("view of size %d: %d leaves, root matches %v, previous size %d", v.Size(), len(ls), root == mth(ls), last)
		}
		if !equalLeaves(ls, leaves[:len(ls)]) {
			t.Fatalf("view of size %d holds other leaves", v.Size())
		}
		last = v.Size()
	}
	wg.Wait()
	if last != uint64(len(leaves)) {
		t.Fatalf("last view of size %d, want %d", last, len(leaves))
	}
	t.Logf("%d views", views)
}

func zstdCompress(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw, err := zstd.NewWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
