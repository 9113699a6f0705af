package audit

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	cloverv1 "github.com/clover-kv/clover/api/cloverv1"
)

// t0 is the time of the first test entry.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)

// testEntry is a plausible entry numbered i.
func testEntry(i int) *cloverv1.AuditEntry {
	return &cloverv1.AuditEntry{
		TimeUnixNano:  t0.Add(time.Duration(i) * time.Millisecond).UnixNano(),
		Caller:        "user:alice",
		CallerCountry: "IE",
		CallerRoles:   []string{"reader"},
		Node:          "ie-1",
		NodeLocality:  &cloverv1.Locality{Country: "IE", Region: "ie-dublin", Zone: "a"},
		Operation:     "get",
		Keyspace:      "people",
		ShardId:       3,
		KeyHmac:       sha256.New().Sum([]byte{byte(i)}),
		Keys:          1,
		Result:        "allowed",
		Rule:          "read-role",
		Consistency:   "linearizable",
		Detail:        fmt.Sprintf("entry %d", i),
	}
}

// mustLeaf encodes e.
func mustLeaf(t testing.TB, e *cloverv1.AuditEntry) []byte {
	t.Helper()
	b, err := EncodeEntry(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testStream is n records of stream shard/3 and the tree of their leaves.
func testStream(t testing.TB, n int) ([]*cloverv1.AuditRecord, *Tree) {
	t.Helper()
	var tree Tree
	recs := make([]*cloverv1.AuditRecord, n)
	for i := range recs {
		e := testEntry(i)
		leaf := mustLeaf(t, e)
		recs[i] = &cloverv1.AuditRecord{Stream: "shard/3", ShardId: 3, Index: uint64(i), Leaf: leaf, Entry: e}
		if err := tree.Append(leaf); err != nil {
			t.Fatal(err)
		}
	}
	return recs, &tree
}

// treeOf is the tree of leaves.
func treeOf(t testing.TB, leaves [][]byte) *Tree {
	t.Helper()
	var tree Tree
	for _, l := range leaves {
		if err := tree.Append(l); err != nil {
			t.Fatal(err)
		}
	}
	return &tree
}

// numberedLeaves is n distinct leaves.
func numberedLeaves(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "leaf %d", i)
	}
	return out
}

// checkpointOf is the checkpoint of tree's first size leaves.
func checkpointOf(t testing.TB, tree *Tree, size uint64) Checkpoint {
	t.Helper()
	root, err := tree.RootAt(size)
	if err != nil {
		t.Fatal(err)
	}
	return Checkpoint{Origin: Origin("prod", "shard/3"), Size: size, Root: root, Time: t0.Add(time.Hour)}
}
