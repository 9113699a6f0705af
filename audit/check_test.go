package audit

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	cloverv1 "github.com/clover-kv/clover/api/cloverv1"
)

// kinds is the sequence of the problems' kinds.
func kinds(ps []Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Kind
	}
	return out
}

func cloneRecords(recs []*cloverv1.AuditRecord) []*cloverv1.AuditRecord {
	out := make([]*cloverv1.AuditRecord, len(recs))
	for i, r := range recs {
		out[i] = proto.Clone(r).(*cloverv1.AuditRecord)
	}
	return out
}

func TestCheckStream(t *testing.T) {
	const kept, n = 20, 30
	recs, tree := testStream(t, n)
	old := checkpointOf(t, tree, kept)
	now := checkpointOf(t, tree, n)
	proof, err := ProveConsistency(kept, n, tree.HashReader())
	if err != nil {
		t.Fatal(err)
	}
	withInclusion := cloneRecords(recs)
	for _, r := range withInclusion {
		if r.Inclusion, err = ProveInclusion(n, r.Index, tree.HashReader()); err != nil {
			t.Fatal(err)
		}
	}

	// The rewrite: leaf 7 changed, every hash recomputed (tree b).
	rewritten := cloneRecords(recs)
	e := testEntry(7)
	e.Result, e.Rule = "refused", "residency"
	rewritten[7].Entry, rewritten[7].Leaf = e, mustLeaf(t, e)
	var b Tree
	for _, r := range rewritten {
		if err := b.Append(r.Leaf); err != nil {
			t.Fatal(err)
		}
	}
	bNow := checkpointOf(t, &b, n)
	bProof, _ := ProveConsistency(kept, n, b.HashReader())

	// Truncation: the node has only the first 15.
	short := checkpointOf(t, tree, 15)

	tests := []struct {
		name        string
		old, now    Checkpoint
		consistency [][]byte
		records     []*cloverv1.AuditRecord
		want        []string
		detail      string // in the first problem
	}{
		{"good", old, now, proof, recs, nil, ""},
		{"good-nothing-kept", Checkpoint{}, now, nil, recs, nil, ""},
		{"good-same-size", now, now, nil, recs, nil, ""},
		{"good-with-inclusion-proofs", old, now, proof, withInclusion, nil, ""},
		{"good-entries-omitted", old, now, proof, func() []*cloverv1.AuditRecord {
			rs := cloneRecords(recs)
			for _, r := range rs {
				r.Entry = nil
			}
			return rs
		}(), nil, ""},
		{"truncated", old, short, nil, recs[:15], []string{"truncated"}, "15 records"},
		{"rewritten-hashes-recomputed", old, bNow, bProof, rewritten, []string{"rewritten", "rewritten"}, "does not extend"},
		{"rewritten-old-hashes", old, now, proof, rewritten, []string{"rewritten", "entry"}, "first 20 leaves"},
		{"rewritten-with-old-inclusion-proofs", old, now, proof, func() []*cloverv1.AuditRecord {
			rs := cloneRecords(withInclusion)
			rs[7].Leaf, rs[7].Entry = rewritten[7].Leaf, rewritten[7].Entry
			return rs
		}(), []string{"proof", "rewritten", "entry"}, "inclusion of leaf 7"},
		{"missing-record", old, now, proof, slices.Delete(slices.Clone(recs), 5, 6), []string{"entry"}, "record 5 is missing"},
		{"missing-records-at-the-end", old, now, proof, recs[:25], []string{"entry"}, "records 25 to 29 are missing"},
		{"missing-kept-part", old, now, proof, recs[10:], []string{"entry"}, "records 0 to 9 are missing"},
		{"duplicate", old, now, proof, slices.Insert(slices.Clone(recs), 4, recs[3]), []string{"entry"}, "repeats index 3"},
		{"out-of-order", old, now, proof, func() []*cloverv1.AuditRecord {
			rs := slices.Clone(recs)
			rs[4], rs[5] = rs[5], rs[4]
			return rs
		}(), []string{"entry"}, "index 4, after index 5"},
		{"beyond-size", old, now, proof, append(slices.Clone(recs), &cloverv1.AuditRecord{Stream: "shard/3", Index: n, Leaf: recs[0].Leaf}), []string{"entry"}, "beyond"},
		{"nil-record", old, now, proof, append(slices.Clone(recs), nil), []string{"entry"}, "position 30"},
		{"another-stream", old, now, proof, func() []*cloverv1.AuditRecord {
			rs := cloneRecords(recs)
			rs[29].Stream = "shard/4"
			return rs
		}(), []string{"entry", "entry"}, "of stream"},
		{"leaf-does-not-decode", old, now, proof, func() []*cloverv1.AuditRecord {
			rs := cloneRecords(recs)
			rs[25].Leaf, rs[25].Entry = []byte{0xff, 0xff}, nil
			return rs
		}(), []string{"entry", "entry"}, "leaf 25"},
		{"entry-differs-from-leaf", old, now, proof, func() []*cloverv1.AuditRecord {
			rs := cloneRecords(recs)
			rs[2].Entry.Result = "refused"
			return rs
		}(), []string{"entry"}, "does not encode"},
		{"bad-inclusion-proof", old, now, proof, func() []*cloverv1.AuditRecord {
			rs := cloneRecords(withInclusion)
			rs[9].Inclusion = rs[10].Inclusion
			return rs
		}(), []string{"proof"}, "inclusion of leaf 9"},
		{"no-consistency-proof", old, now, nil, recs, []string{"rewritten"}, "does not extend"},
		{"proof-from-nothing", Checkpoint{}, now, proof, recs, []string{"proof"}, "empty tree"},
		{"checkpoint-of-another-stream", old, func() Checkpoint { c := now; c.Origin = Origin("prod", "shard/4"); return c }(), proof, recs,
			[]string{"signature", "signature"}, "not of stream"},
		{"checkpoints-of-different-clusters", func() Checkpoint { c := old; c.Origin = Origin("test", "shard/3"); return c }(), now, proof, recs,
			[]string{"signature"}, "kept checkpoint is of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := CheckStream("shard/3", "ie-1", tt.old, tt.now, tt.consistency, tt.records)
			if !slices.Equal(kinds(ps), tt.want) {
				t.Fatalf("problems %v, want kinds %v", ps, tt.want)
			}
			for _, p := range ps {
				if p.Stream != "shard/3" || p.Node != "ie-1" {
					t.Fatalf("problem %+v names the wrong stream or node", p)
				}
			}
			if len(ps) > 0 && !strings.Contains(ps[0].Detail, tt.detail) {
				t.Fatalf("first problem %q does not say %q", ps[0].Detail, tt.detail)
			}
			again := CheckStream("shard/3", "ie-1", tt.old, tt.now, tt.consistency, tt.records)
			if !slices.Equal(ps, again) {
				t.Fatalf("not deterministic: %v then %v", ps, again)
			}
		})
	}
}

// TestCheckStreamFindsEveryRewrite rewrites each leaf of a kept prefix in
// turn, as a node would with every hash recomputed, and checks that each
// is reported as a rewrite.
func TestCheckStreamFindsEveryRewrite(t *testing.T) {
	const kept, n = 13, 21
	recs, tree := testStream(t, n)
	old := checkpointOf(t, tree, kept)
	for k := 0; k < kept; k++ {
		rs := cloneRecords(recs)
		rs[k].Entry.Caller = "user:mallory"
		rs[k].Leaf = mustLeaf(t, rs[k].Entry)
		var b Tree
		for _, r := range rs {
			if err := b.Append(r.Leaf); err != nil {
				t.Fatal(err)
			}
		}
		proof, _ := ProveConsistency(kept, n, b.HashReader())
		ps := CheckStream("shard/3", "ie-1", old, checkpointOf(t, &b, n), proof, rs)
		if !slices.Contains(kinds(ps), "rewritten") {
			t.Fatalf("leaf %d rewritten: problems %v", k, ps)
		}
	}
}
