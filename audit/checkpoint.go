package audit

import (
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// originPrefix begins every checkpoint's origin line.
const originPrefix = "clover-audit/"

// maxNote is the longest checkpoint note OpenCheckpoint reads: the text is
// under 200 bytes and a signature line under 200 more.
const maxNote = 16 << 10

// Checkpoint is a stream's tree head: its size and root at a time, named
// by its origin (Origin). The signed form is a note whose text is
// exactly
//
//	clover-audit/<cluster>/<stream>
//	<size, decimal>
//	<root, standard base64>
//	time <time, RFC 3339 with nanoseconds, UTC>
//
// each line ending in a newline.
type Checkpoint struct {
	Origin string    // Origin(cluster, stream)
	Size   uint64    // leaves in the tree, at most math.MaxInt64
	Root   tlog.Hash // root hash of the tree of Size leaves
	Time   time.Time // when the node read the tree head; OpenCheckpoint returns it in UTC
}

// Origin is the first line of a checkpoint of stream ("admin" or
// "shard/<id>") in cluster (the trust domain in secure mode):
// "clover-audit/<cluster>/<stream>". A checkpoint's origin binds it to one
// stream of one cluster, so it cannot be replayed for another.
func Origin(cluster, stream string) string { return originPrefix + cluster + "/" + stream }

// checkOrigin checks that o is clover-audit/<cluster>/<stream> with both
// parts non-empty, in printable ASCII with no space.
func checkOrigin(o string) error {
	rest, ok := strings.CutPrefix(o, originPrefix)
	cluster, stream, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || cluster == "" || stream == "" {
		return fmt.Errorf("%w: origin %q: want %s<cluster>/<stream>", ErrBadCheckpoint, clip(o), originPrefix)
	}
	for i := 0; i < len(o); i++ {
		if o[i] <= ' ' || o[i] >= 0x7f {
			return fmt.Errorf("%w: origin %q: byte %d is not printable ASCII", ErrBadCheckpoint, clip(o), i)
		}
	}
	return nil
}

// text is cp's note text. It refuses a checkpoint that would not read
// back as itself: a bad origin, a size above math.MaxInt64, a zero time or
// one outside the years 0-9999 that RFC 3339 can write.
func (cp Checkpoint) text() (string, error) {
	if cp.Time.IsZero() {
		return "", fmt.Errorf("%w: checkpoint without a time", ErrBadCheckpoint)
	}
	s := fmt.Sprintf("%s\n%d\n%s\ntime %s\n", cp.Origin, cp.Size,
		base64.StdEncoding.EncodeToString(cp.Root[:]), cp.Time.UTC().Format(time.RFC3339Nano))
	back, err := parseText(s)
	if err != nil {
		return "", err
	}
	if !back.Time.Equal(cp.Time) {
		return "", fmt.Errorf("%w: time %v cannot be written in RFC 3339", ErrBadCheckpoint, cp.Time)
	}
	return s, nil
}

// parseText parses a checkpoint's note text, accepting exactly what text
// writes.
func parseText(s string) (Checkpoint, error) {
	lines := strings.Split(s, "\n")
	if len(lines) != 5 || lines[4] != "" {
		return Checkpoint{}, fmt.Errorf("%w: text of %d lines (want 4, each ending in a newline)", ErrBadCheckpoint, len(lines)-1)
	}
	var cp Checkpoint
	if err := checkOrigin(lines[0]); err != nil {
		return Checkpoint{}, err
	}
	cp.Origin = lines[0]
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] || size > math.MaxInt64 {
		return Checkpoint{}, fmt.Errorf("%w: size %q: want a decimal number up to %d, no leading zeros", ErrBadCheckpoint, clip(lines[1]), int64(math.MaxInt64))
	}
	cp.Size = size
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize || base64.StdEncoding.EncodeToString(root) != lines[2] {
		return Checkpoint{}, fmt.Errorf("%w: root %q: want %d bytes in standard base64", ErrBadCheckpoint, clip(lines[2]), tlog.HashSize)
	}
	copy(cp.Root[:], root)
	ts, ok := strings.CutPrefix(lines[3], "time ")
	if !ok {
		return Checkpoint{}, fmt.Errorf("%w: line 4 %q: want time <RFC 3339 UTC>", ErrBadCheckpoint, clip(lines[3]))
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil || t.Location() != time.UTC || t.Format(time.RFC3339Nano) != ts || t.IsZero() {
		return Checkpoint{}, fmt.Errorf("%w: time %q: want RFC 3339 in UTC as time.RFC3339Nano writes it", ErrBadCheckpoint, clip(ts))
	}
	cp.Time = t
	return cp, nil
}

// SignCheckpoint returns cp as a note (golang.org/x/mod/sumdb/note) signed
// by signer (the node ID) with key: an ECDSA P-256 key (a node's TLS key)
// or an Ed25519 key. cp must be writable exactly (see Checkpoint): a valid
// origin, a size up to math.MaxInt64 and a non-zero time. Errors wrap
// ErrBadCheckpoint or ErrBadSignature.
func SignCheckpoint(cp Checkpoint, signer string, key crypto.Signer) ([]byte, error) {
	text, err := cp.text()
	if err != nil {
		return nil, err
	}
	s, err := newNoteSigner(signer, key)
	if err != nil {
		return nil, err
	}
	msg, err := note.Sign(&note.Note{Text: text}, s)
	if err != nil {
		return nil, fmt.Errorf("%w: sign as %q: %w", ErrBadSignature, clip(signer), err)
	}
	return msg, nil
}

// OpenCheckpoint verifies that msg is a note signed by signer with the key
// whose public half is pub (ECDSA P-256 or Ed25519), and parses its text
// strictly (see Checkpoint). Other signatures on the note are ignored.
// Errors wrap ErrBadSignature (not signed by that key, a signature that
// does not verify, a key of another type) or ErrBadCheckpoint (a note or
// text that does not parse).
func OpenCheckpoint(msg []byte, signer string, pub crypto.PublicKey) (Checkpoint, error) {
	if len(msg) > maxNote {
		return Checkpoint{}, fmt.Errorf("%w: note of %d bytes (at most %d)", ErrBadCheckpoint, len(msg), maxNote)
	}
	v, err := newNoteVerifier(signer, pub)
	if err != nil {
		return Checkpoint{}, err
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			return Checkpoint{}, fmt.Errorf("%w: the note has no signature by %q with key %08x", ErrBadSignature, clip(signer), v.KeyHash())
		case errors.As(err, &invalid):
			return Checkpoint{}, fmt.Errorf("%w: the signature by %q with key %08x does not verify", ErrBadSignature, clip(signer), v.KeyHash())
		}
		return Checkpoint{}, fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
	}
	return parseText(n.Text)
}
