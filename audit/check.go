package audit

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	cloverv1 "github.com/clover-kv/clover/api/cloverv1"
)

// The kinds of Problem CheckStream reports.
const (
	kindTruncated = "truncated" // the stream is shorter than a checkpoint kept of it
	kindRewritten = "rewritten" // the kept checkpoint's history is not a prefix of the stream
	kindEntry     = "entry"     // the records do not make the tree the node signed, or one does not decode
	kindSignature = "signature" // the checkpoints do not name this stream, or each another
	kindProof     = "proof"     // a proof the node sent does not verify
)

// Problem is one thing wrong with a node's copy of a stream.
type Problem struct {
	Stream string // the stream checked
	Node   string // the node whose copy it is
	Kind   string // truncated, rewritten, entry, signature or proof
	Detail string // what, with indexes, sizes and hashes; never a key or value
}

// String is "<stream> on <node>: <kind>: <detail>".
func (p Problem) String() string {
	return fmt.Sprintf("%s on %s: %s: %s", p.Stream, p.Node, p.Kind, p.Detail)
}

// CheckStream checks node's copy of stream against old, a checkpoint an
// auditor kept (old.Size 0: none kept), and now, the node's current
// checkpoint; both must have had their signatures verified
// (VerifySigned). consistency is the node's proof that now extends old;
// records are all records of the stream, [0, now.Size), in index order
// (a record's Entry may be nil).
//
// It rebuilds the tree from the records' leaves and reports, in this
// order:
//
//   - signature: an origin that does not end in "/<stream>", or old and
//     now naming different origins;
//   - truncated: now.Size < old.Size;
//   - rewritten: a consistency proof that does not verify (with the
//     tlog verifier); proof: a non-empty consistency proof from size 0;
//   - per record, in the order given: entry for a nil record, a record of
//     another stream, an index at or beyond now.Size, a duplicate or
//     out-of-order index, a leaf that does not decode or an Entry that
//     differs from its leaf; proof for an inclusion proof that does not
//     verify against now;
//   - entry: each range of missing indexes;
//   - rewritten: the rebuilt tree's root at old.Size is not old.Root;
//   - entry: the rebuilt tree's root is not now.Root.
//
// The rebuilt roots are compared as far as the records run in order from
// index 0. The result is deterministic; nil means the copy is good.
func CheckStream(stream, node string, old, now Checkpoint, consistency [][]byte, records []*cloverv1.AuditRecord) []Problem {
	c := &checker{stream: stream, node: node}
	c.checkOrigins(old, now)
	if now.Size < old.Size {
		c.add(kindTruncated, "the stream has %d records, the kept checkpoint %d", now.Size, old.Size)
	} else if old.Size > 0 {
		if err := VerifyConsistency(old.Size, old.Root[:], now.Size, now.Root[:], consistency); err != nil {
			c.add(kindRewritten, "size %d does not extend the kept size %d: %v", now.Size, old.Size, err)
		}
	} else if len(consistency) > 0 {
		c.add(kindProof, "%d hashes proving consistency with the empty tree (want none)", len(consistency))
	}

	var tree Tree
	inOrder := true // records so far are 0, 1, 2, ...
	seen := make(map[uint64]bool, len(records))
	var maxSeen uint64
	for pos, r := range records {
		if r == nil {
			c.add(kindEntry, "record at position %d is empty", pos)
			inOrder = false
			continue
		}
		ok := c.checkIndex(r, pos, now.Size, seen, maxSeen)
		if !ok {
			inOrder = false
			continue
		}
		seen[r.Index] = true
		maxSeen = max(maxSeen, r.Index)
		c.checkRecord(r, now)
		if inOrder && r.Index == tree.Size() {
			_ = tree.Append(r.Leaf) // never fails: the tree reads only its own hashes
		} else {
			inOrder = false
		}
	}
	c.missing(seen, now.Size)

	if old.Size > 0 && old.Size <= tree.Size() {
		if h, _ := tree.RootAt(old.Size); h != old.Root {
			c.add(kindRewritten, "the records' first %d leaves hash to %x, the kept checkpoint says %x", old.Size, h[:], old.Root[:])
		}
	}
	if tree.Size() == now.Size {
		if h := tree.Root(); h != now.Root {
			c.add(kindEntry, "the %d records hash to %x, the node's checkpoint says %x", now.Size, h[:], now.Root[:])
		}
	}
	return c.problems
}

// checker collects the problems of one CheckStream.
type checker struct {
	stream, node string
	problems     []Problem
}

func (c *checker) add(kind, format string, args ...any) {
	c.problems = append(c.problems, Problem{Stream: c.stream, Node: c.node, Kind: kind, Detail: fmt.Sprintf(format, args...)})
}

// checkOrigins checks that the checkpoints name this stream, and the same
// origin.
func (c *checker) checkOrigins(old, now Checkpoint) {
	suffix := "/" + c.stream
	if !strings.HasPrefix(now.Origin, originPrefix) || !strings.HasSuffix(now.Origin, suffix) {
		c.add(kindSignature, "the node's checkpoint is of %q, not of stream %q", clip(now.Origin), clip(c.stream))
	}
	if old.Size > 0 && old.Origin != now.Origin {
		c.add(kindSignature, "the kept checkpoint is of %q, the node's of %q", clip(old.Origin), clip(now.Origin))
	}
}

// checkIndex checks r's stream and index; false means r is left out of
// the rebuilt tree.
func (c *checker) checkIndex(r *cloverv1.AuditRecord, pos int, size uint64, seen map[uint64]bool, maxSeen uint64) bool {
	switch {
	case r.Stream != "" && r.Stream != c.stream:
		c.add(kindEntry, "record at position %d is of stream %q", pos, clip(r.Stream))
	case r.Index >= size:
		c.add(kindEntry, "record at position %d has index %d, beyond the checkpoint's size %d", pos, r.Index, size)
	case seen[r.Index]:
		c.add(kindEntry, "record at position %d repeats index %d", pos, r.Index)
	case len(seen) > 0 && r.Index < maxSeen:
		c.add(kindEntry, "record at position %d has index %d, after index %d", pos, r.Index, maxSeen)
		seen[r.Index] = true // present, if out of place
	default:
		return true
	}
	return false
}

// checkRecord checks that r's leaf decodes, agrees with its Entry, and
// that its inclusion proof, if any, verifies against now.
func (c *checker) checkRecord(r *cloverv1.AuditRecord, now Checkpoint) {
	e, err := DecodeEntry(r.Leaf)
	switch {
	case err != nil:
		c.add(kindEntry, "leaf %d (hash %x): %v", r.Index, leafHashBytes(r.Leaf), err)
	case r.Entry != nil && !proto.Equal(e, r.Entry):
		c.add(kindEntry, "leaf %d (hash %x) does not encode the record's entry", r.Index, leafHashBytes(r.Leaf))
	}
	if len(r.Inclusion) > 0 {
		if err := VerifyInclusion(now.Size, now.Root[:], r.Index, r.Leaf, r.Inclusion); err != nil {
			c.add(kindProof, "inclusion of leaf %d: %v", r.Index, err)
		}
	}
}

// missing reports each range of indexes below size that no record had.
func (c *checker) missing(seen map[uint64]bool, size uint64) {
	idx := make([]uint64, 0, len(seen))
	for i := range seen {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	next := uint64(0)
	for _, i := range append(idx, size) {
		if i > next {
			if i-next == 1 {
				c.add(kindEntry, "record %d is missing", next)
			} else {
				c.add(kindEntry, "records %d to %d are missing", next, i-1)
			}
		}
		next = i + 1
	}
}

// leafHashBytes is LeafHash as a slice, for messages.
func leafHashBytes(leaf []byte) []byte {
	h := LeafHash(leaf)
	return h[:]
}
