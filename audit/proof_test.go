package audit

import (
	"crypto/sha256"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// referenceRoot is RFC 6962's MTH computed naively, to check Tree against
// an implementation that shares no code with tlog.
func referenceRoot(leaves [][]byte) [32]byte {
	if len(leaves) == 0 {
		return sha256.Sum256(nil)
	}
	if len(leaves) == 1 {
		return sha256.Sum256(append([]byte{0}, leaves[0]...))
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := referenceRoot(leaves[:k]), referenceRoot(leaves[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

func TestTreeRootsMatchReference(t *testing.T) {
	leaves := numberedLeaves(70)
	tree := treeOf(t, leaves)
	for n := 0; n <= len(leaves); n++ {
		got, err := tree.RootAt(uint64(n))
		if err != nil {
			t.Fatal(err)
		}
		if want := referenceRoot(leaves[:n]); got != tlog.Hash(want) {
			t.Fatalf("RootAt(%d) = %x, reference %x", n, got[:], want[:])
		}
	}
	if tree.Root() != tlog.Hash(referenceRoot(leaves)) || tree.Size() != 70 {
		t.Fatalf("Root/Size of the whole tree wrong")
	}
	var empty Tree
	if empty.Root() != tlog.Hash(sha256.Sum256(nil)) {
		t.Fatalf("empty root %x, want SHA-256 of nothing", empty.Root())
	}
	if _, err := tree.RootAt(71); !errors.Is(err, ErrBadProof) {
		t.Fatalf("RootAt beyond the size: %v, want ErrBadProof", err)
	}
}

func TestProofsVerify(t *testing.T) {
	const max = 300
	tree := treeOf(t, numberedLeaves(max))
	leaves := numberedLeaves(max)
	rng := rand.New(rand.NewPCG(1, 2))
	for n := uint64(1); n <= max; n++ {
		root, err := tree.RootAt(n)
		if err != nil {
			t.Fatal(err)
		}
		indexes := []uint64{0, n - 1, n / 2, rng.Uint64N(n)}
		for _, i := range indexes {
			p, err := ProveInclusion(n, i, tree.HashReader())
			if err != nil {
				t.Fatalf("ProveInclusion(%d, %d): %v", n, i, err)
			}
			if err := VerifyInclusion(n, root[:], i, leaves[i], p); err != nil {
				t.Fatalf("VerifyInclusion(%d, %d): %v", n, i, err)
			}
			if err := tlog.CheckRecord(toTlog(p), int64(n), root, int64(i), tlog.RecordHash(leaves[i])); err != nil {
				t.Fatalf("tlog.CheckRecord(%d, %d): %v", n, i, err)
			}
		}
		olds := []uint64{1, n, n - 1, rng.Uint64N(n) + 1, rng.Uint64N(n) + 1}
		for _, m := range olds {
			if m == 0 {
				continue
			}
			oldRoot, _ := tree.RootAt(m)
			p, err := ProveConsistency(m, n, tree.HashReader())
			if err != nil {
				t.Fatalf("ProveConsistency(%d, %d): %v", m, n, err)
			}
			if err := VerifyConsistency(m, oldRoot[:], n, root[:], p); err != nil {
				t.Fatalf("VerifyConsistency(%d, %d): %v", m, n, err)
			}
			if m < n {
				if err := tlog.CheckTree(toTlog(p), int64(n), root, int64(m), oldRoot); err != nil {
					t.Fatalf("tlog.CheckTree(%d, %d): %v", m, n, err)
				}
			}
		}
		empty := tlog.Hash(sha256.Sum256(nil))
		p, err := ProveConsistency(0, n, tree.HashReader())
		if err != nil || len(p) != 0 {
			t.Fatalf("ProveConsistency(0, %d) = %d hashes, %v; want none", n, len(p), err)
		}
		if err := VerifyConsistency(0, empty[:], n, root[:], p); err != nil {
			t.Fatalf("VerifyConsistency(0, %d): %v", n, err)
		}
	}
}

func toTlog(p [][]byte) []tlog.Hash {
	hs, err := bytesToHashes(p)
	if err != nil {
		panic(err)
	}
	return hs
}

// flip returns a copy of p with one bit of hash i flipped.
func flip(p [][]byte, i int) [][]byte {
	out := clone(p)
	out[i][7] ^= 0x10
	return out
}

func clone(p [][]byte) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = append([]byte(nil), p[i]...)
	}
	return out
}

func TestForgedInclusionProofsRefused(t *testing.T) {
	const n = 37
	leaves := numberedLeaves(n)
	tree := treeOf(t, leaves)
	root := tree.Root()
	p, err := ProveInclusion(n, 12, tree.HashReader())
	if err != nil {
		t.Fatal(err)
	}
	p13, _ := ProveInclusion(n, 13, tree.HashReader())
	p36, _ := ProveInclusion(36, 12, tree.HashReader())
	tests := []struct {
		name  string
		size  uint64
		root  []byte
		index uint64
		leaf  []byte
		proof [][]byte
	}{
		{"flipped-hash@0", n, root[:], 12, leaves[12], flip(p, 0)},
		{"flipped-hash@last", n, root[:], 12, leaves[12], flip(p, len(p)-1)},
		{"flipped-root", n, flip([][]byte{root[:]}, 0)[0], 12, leaves[12], p},
		{"other-leaf", n, root[:], 12, leaves[13], p},
		{"proof-of-another-index", n, root[:], 12, leaves[12], p13},
		{"claimed-another-index", n, root[:], 13, leaves[12], p},
		{"proof-for-another-size", n, root[:], 12, leaves[12], p36},
		// A size whose tree has another shape. (Sizes 33-63 share the
		// shape of 37 around leaf 12, so a root with the wrong one of them
		// is only caught by the signed checkpoint binding size and root.)
		{"claimed-another-size", 80, root[:], 12, leaves[12], p},
		{"truncated", n, root[:], 12, leaves[12], p[:len(p)-1]},
		{"extended", n, root[:], 12, leaves[12], append(clone(p), root[:])},
		{"preceding-garbage", n, root[:], 12, leaves[12], append([][]byte{root[:]}, p...)},
		{"empty", n, root[:], 12, leaves[12], nil},
		{"short-hash", n, root[:], 12, leaves[12], append(clone(p[1:]), p[0][:31])},
		{"short-root", n, root[:31], 12, leaves[12], p},
		{"no-root", n, nil, 12, leaves[12], p},
		{"index-at-size", n, root[:], n, leaves[12], p},
		{"size-zero", 0, root[:], 0, leaves[12], p},
		{"size-above-int64", math.MaxUint64, root[:], 12, leaves[12], p},
		{"too-many-hashes", n, root[:], 12, leaves[12], make([][]byte, 1000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyInclusion(tt.size, tt.root, tt.index, tt.leaf, tt.proof)
			if !errors.Is(err, ErrBadProof) {
				t.Fatalf("VerifyInclusion = %v, want ErrBadProof", err)
			}
		})
	}
}

func TestForgedConsistencyProofsRefused(t *testing.T) {
	const old, n = 13, 37
	tree := treeOf(t, numberedLeaves(n))
	oldRoot, _ := tree.RootAt(old)
	root := tree.Root()
	p, err := ProveConsistency(old, n, tree.HashReader())
	if err != nil {
		t.Fatal(err)
	}
	p12, _ := ProveConsistency(12, n, tree.HashReader())
	p36, _ := ProveConsistency(old, 36, tree.HashReader())
	empty := sha256.Sum256(nil)
	tests := []struct {
		name             string
		oldSize, newSize uint64
		oldRoot, newRoot []byte
		proof            [][]byte
	}{
		{"flipped-hash@0", old, n, oldRoot[:], root[:], flip(p, 0)},
		{"flipped-hash@last", old, n, oldRoot[:], root[:], flip(p, len(p)-1)},
		{"flipped-old-root", old, n, flip([][]byte{oldRoot[:]}, 0)[0], root[:], p},
		{"flipped-new-root", old, n, oldRoot[:], flip([][]byte{root[:]}, 0)[0], p},
		{"proof-from-another-size", old, n, oldRoot[:], root[:], p12},
		{"proof-to-another-size", old, n, oldRoot[:], root[:], p36},
		{"claimed-another-new-size", old, 80, oldRoot[:], root[:], p},
		{"truncated", old, n, oldRoot[:], root[:], p[:len(p)-1]},
		{"extended", old, n, oldRoot[:], root[:], append(clone(p), root[:])},
		{"preceding-garbage", old, n, oldRoot[:], root[:], append([][]byte{oldRoot[:]}, p...)},
		{"empty-for-different-sizes", old, n, oldRoot[:], root[:], nil},
		{"equal-sizes-different-roots", n, n, oldRoot[:], root[:], nil},
		{"equal-sizes-with-hashes", n, n, root[:], root[:], p},
		{"from-empty-with-hashes", 0, n, empty[:], root[:], p},
		{"from-empty-wrong-root", 0, n, oldRoot[:], root[:], nil},
		{"shrinking", n, old, root[:], oldRoot[:], p},
		{"short-hash", old, n, oldRoot[:], root[:], append(clone(p[1:]), p[0][:31])},
		{"short-old-root", old, n, oldRoot[:16], root[:], p},
		{"no-new-root", old, n, oldRoot[:], nil, p},
		{"size-above-int64", old, math.MaxUint64, oldRoot[:], root[:], p},
		{"too-many-hashes", old, n, oldRoot[:], root[:], make([][]byte, 1000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyConsistency(tt.oldSize, tt.oldRoot, tt.newSize, tt.newRoot, tt.proof)
			if !errors.Is(err, ErrBadProof) {
				t.Fatalf("VerifyConsistency = %v, want ErrBadProof", err)
			}
		})
	}
}

// TestRewrittenHistoryIsNotConsistent is the case of immudb's advisory
// GHSA-672p-m5jq-mrh8: a server whose log differs in one leaf from the one
// a kept checkpoint signed must not be able to prove that its log extends
// the kept one. Trees A (what the auditor saw) and B (the server's
// rewrite) share every leaf but leaf k; for every kept size m > k and
// every size the server may claim, neither B's own proofs, nor A's honest
// ones (a server that kept the old hashes), nor B's with its old subtree
// root prepended pass against A's kept root.
func TestRewrittenHistoryIsNotConsistent(t *testing.T) {
	const n = 40
	for _, k := range []int{0, 5, 15, 16, 31} {
		a := numberedLeaves(n)
		b := numberedLeaves(n)
		b[k] = []byte("rewritten")
		ta, tb := treeOf(t, a), treeOf(t, b)
		for m := uint64(k + 1); m <= n; m++ {
			kept, _ := ta.RootAt(m)
			for size := m; size <= n; size++ {
				bRoot, _ := tb.RootAt(size)
				bOld, _ := tb.RootAt(m)
				pb, err := ProveConsistency(m, size, tb.HashReader())
				if err != nil {
					t.Fatal(err)
				}
				pa, _ := ProveConsistency(m, size, ta.HashReader())
				for name, p := range map[string][][]byte{
					"B's proof":                pb,
					"A's proof":                pa,
					"B's proof, old prepended": append([][]byte{bOld[:]}, pb...),
				} {
					if err := VerifyConsistency(m, kept[:], size, bRoot[:], p); !errors.Is(err, ErrBadProof) {
						t.Fatalf("leaf %d rewritten, kept size %d, claimed %d: %s passed (%v)", k, m, size, name, err)
					}
				}
				// And the honest server's proof does pass: the check is
				// about the rewrite, not the sizes.
				aRoot, _ := ta.RootAt(size)
				if err := VerifyConsistency(m, kept[:], size, aRoot[:], pa); err != nil {
					t.Fatalf("honest proof %d -> %d refused: %v", m, size, err)
				}
			}
		}
	}
}

func TestProveRefusesBadInput(t *testing.T) {
	tree := treeOf(t, numberedLeaves(10))
	short := tlog.HashReaderFunc(func(ix []int64) ([]tlog.Hash, error) { return make([]tlog.Hash, len(ix)-1), nil })
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"inclusion index at size", second(ProveInclusion(10, 10, tree.HashReader())), ErrBadProof},
		{"inclusion size zero", second(ProveInclusion(0, 0, tree.HashReader())), ErrBadProof},
		{"inclusion size above int64", second(ProveInclusion(math.MaxUint64, 1, tree.HashReader())), ErrBadProof},
		{"inclusion beyond the tree", second(ProveInclusion(11, 3, tree.HashReader())), ErrBadProof},
		{"consistency shrinking", second(ProveConsistency(5, 4, tree.HashReader())), ErrBadProof},
		{"consistency size above int64", second(ProveConsistency(5, math.MaxUint64, tree.HashReader())), ErrBadProof},
		{"consistency beyond the tree", second(ProveConsistency(5, 12, tree.HashReader())), ErrBadProof},
		{"reader short of hashes", second(ProveInclusion(10, 3, short)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil || (tt.want != nil && !errors.Is(tt.err, tt.want)) {
				t.Fatalf("err = %v, want %v", tt.err, tt.want)
			}
		})
	}
}

func second[T any](_ T, err error) error { return err }
