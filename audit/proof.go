package audit

import (
	"fmt"
	"math"

	"golang.org/x/mod/sumdb/tlog"
)

// maxProofHashes bounds a proof's length: a proof for a tree of fewer than
// 2^63 leaves has at most 2·63 hashes.
const maxProofHashes = 2 * 63

// LeafHash is the RFC 6962 hash of a leaf, SHA-256(0x00 || leaf)
// (tlog.RecordHash).
func LeafHash(leaf []byte) tlog.Hash { return tlog.RecordHash(leaf) }

// ProveInclusion returns the hashes proving that leaf index is in the tree
// of size treeSize whose stored hashes r reads (tlog.ProveRecord).
// Requires index < treeSize <= math.MaxInt64. Errors wrap ErrBadProof, or
// are r's.
func ProveInclusion(treeSize, index uint64, r tlog.HashReader) ([][]byte, error) {
	if treeSize > math.MaxInt64 || index >= treeSize {
		return nil, fmt.Errorf("%w: inclusion of index %d in a tree of size %d", ErrBadProof, index, treeSize)
	}
	p, err := tlog.ProveRecord(int64(treeSize), int64(index), r)
	if err != nil {
		return nil, fmt.Errorf("prove inclusion of %d in %d: %w", index, treeSize, err)
	}
	return hashesToBytes(p), nil
}

// ProveConsistency returns the hashes proving that the tree of size
// newSize extends the tree of size oldSize (tlog.ProveTree). The proof is
// empty when oldSize is 0 (every tree extends the empty one) or equals
// newSize. Requires oldSize <= newSize <= math.MaxInt64. Errors wrap
// ErrBadProof, or are r's.
func ProveConsistency(oldSize, newSize uint64, r tlog.HashReader) ([][]byte, error) {
	if newSize > math.MaxInt64 || oldSize > newSize {
		return nil, fmt.Errorf("%w: consistency of size %d with size %d", ErrBadProof, oldSize, newSize)
	}
	if oldSize == 0 || oldSize == newSize {
		return [][]byte{}, nil
	}
	p, err := tlog.ProveTree(int64(newSize), int64(oldSize), r)
	if err != nil {
		return nil, fmt.Errorf("prove consistency of %d with %d: %w", oldSize, newSize, err)
	}
	return hashesToBytes(p), nil
}

// VerifyInclusion checks that leaf is leaf index of the tree of size
// treeSize with root hash root (tlog.CheckRecord). Requires index <
// treeSize <= math.MaxInt64, a 32-byte root and 32-byte proof hashes.
// Errors wrap ErrBadProof.
func VerifyInclusion(treeSize uint64, root []byte, index uint64, leaf []byte, proof [][]byte) error {
	if treeSize > math.MaxInt64 || index >= treeSize {
		return fmt.Errorf("%w: index %d is not in a tree of size %d", ErrBadProof, index, treeSize)
	}
	th, err := toHash("root", root)
	if err != nil {
		return err
	}
	p, err := bytesToHashes(proof)
	if err != nil {
		return err
	}
	if err := tlog.CheckRecord(p, int64(treeSize), th, int64(index), LeafHash(leaf)); err != nil {
		return fmt.Errorf("%w: leaf %d is not in the tree of size %d and root %x: %w", ErrBadProof, index, treeSize, th[:], err)
	}
	return nil
}

// VerifyConsistency checks that the tree of size newSize and root newRoot
// extends the tree of size oldSize and root oldRoot: its first oldSize
// leaves are those of the old tree (tlog.CheckTree). Requires oldSize <=
// newSize <= math.MaxInt64 and 32-byte roots and proof hashes. When
// oldSize is 0, oldRoot must be the empty tree's hash and the proof empty;
// when the sizes are equal, the roots must be equal and the proof empty.
// Errors wrap ErrBadProof.
func VerifyConsistency(oldSize uint64, oldRoot []byte, newSize uint64, newRoot []byte, proof [][]byte) error {
	if newSize > math.MaxInt64 || oldSize > newSize {
		return fmt.Errorf("%w: a tree of size %d cannot extend one of size %d", ErrBadProof, newSize, oldSize)
	}
	oh, err := toHash("old root", oldRoot)
	if err != nil {
		return err
	}
	nh, err := toHash("new root", newRoot)
	if err != nil {
		return err
	}
	p, err := bytesToHashes(proof)
	if err != nil {
		return err
	}
	switch {
	case oldSize == 0:
		if oh != emptyRoot() {
			return fmt.Errorf("%w: old root %x is not the empty tree's", ErrBadProof, oh[:])
		}
		if len(p) != 0 {
			return fmt.Errorf("%w: %d hashes proving consistency with the empty tree (want none)", ErrBadProof, len(p))
		}
		return nil
	case oldSize == newSize:
		if len(p) != 0 {
			return fmt.Errorf("%w: %d hashes proving consistency of equal sizes (want none)", ErrBadProof, len(p))
		}
		if oh != nh {
			return fmt.Errorf("%w: two roots for size %d: %x and %x", ErrBadProof, oldSize, oh[:], nh[:])
		}
		return nil
	}
	if err := tlog.CheckTree(p, int64(newSize), nh, int64(oldSize), oh); err != nil {
		return fmt.Errorf("%w: size %d root %x does not extend size %d root %x: %w", ErrBadProof, newSize, nh[:], oldSize, oh[:], err)
	}
	return nil
}

// emptyRoot is the root hash of the empty tree, SHA-256 of nothing.
func emptyRoot() tlog.Hash {
	h, _ := tlog.TreeHash(0, nil) // never fails: it reads nothing
	return h
}

// toHash converts a 32-byte hash from the wire.
func toHash(what string, b []byte) (tlog.Hash, error) {
	var h tlog.Hash
	if len(b) != tlog.HashSize {
		return h, fmt.Errorf("%w: %s of %d bytes (want %d)", ErrBadProof, what, len(b), tlog.HashSize)
	}
	copy(h[:], b)
	return h, nil
}

// bytesToHashes converts a proof from the wire.
func bytesToHashes(proof [][]byte) ([]tlog.Hash, error) {
	if len(proof) > maxProofHashes {
		return nil, fmt.Errorf("%w: proof of %d hashes (at most %d)", ErrBadProof, len(proof), maxProofHashes)
	}
	hs := make([]tlog.Hash, len(proof))
	for i, b := range proof {
		if len(b) != tlog.HashSize {
			return nil, fmt.Errorf("%w: proof hash %d of %d bytes (want %d)", ErrBadProof, i, len(b), tlog.HashSize)
		}
		copy(hs[i][:], b)
	}
	return hs, nil
}

// hashesToBytes converts a proof for the wire.
func hashesToBytes(hs []tlog.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = append([]byte(nil), hs[i][:]...)
	}
	return out
}
