package audit

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// Tree is a log held in memory: the hashes tlog stores for each leaf
// appended (tlog.StoredHashes), from which it computes roots and proofs.
// An auditor rebuilds one from a stream's leaves to check them against a
// checkpoint. The zero Tree is empty and ready. A Tree is not safe for
// concurrent use.
type Tree struct {
	size   uint64
	hashes []tlog.Hash // indexed by tlog.StoredHashIndex
}

// Append adds leaf as leaf Size(). An error leaves the tree unchanged.
func (t *Tree) Append(leaf []byte) error {
	hs, err := tlog.StoredHashes(int64(t.size), leaf, t.HashReader())
	if err != nil {
		return fmt.Errorf("append leaf %d: %w", t.size, err)
	}
	t.hashes = append(t.hashes, hs...)
	t.size++
	return nil
}

// Size is the number of leaves appended.
func (t *Tree) Size() uint64 { return t.size }

// Root is the root hash of the whole tree; for the empty tree, the hash of
// nothing (as tlog.TreeHash(0)).
func (t *Tree) Root() tlog.Hash {
	h, err := t.RootAt(t.size)
	if err != nil {
		panic(err) // the tree's own hashes are all present
	}
	return h
}

// RootAt is the root hash of the tree's first size leaves. Requires size
// <= Size(); a larger size is an error wrapping ErrBadProof.
func (t *Tree) RootAt(size uint64) (tlog.Hash, error) {
	if size > t.size {
		return tlog.Hash{}, fmt.Errorf("%w: root at size %d of a tree of size %d", ErrBadProof, size, t.size)
	}
	return tlog.TreeHash(int64(size), t.HashReader())
}

// HashReader reads the tree's stored hashes, for ProveInclusion and
// ProveConsistency. It reads the tree as it is at each call, so it serves
// proofs for any size up to the current Size.
func (t *Tree) HashReader() tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			if x < 0 || x >= int64(len(t.hashes)) {
				return nil, fmt.Errorf("%w: stored hash %d of a tree of size %d", ErrBadProof, x, t.size)
			}
			out[i] = t.hashes[x]
		}
		return out, nil
	})
}
