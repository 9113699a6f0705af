package audit

import "errors"

// Sentinel errors. Every error this package returns wraps one of them, with
// detail; test with errors.Is. No error string carries a key, a value or a
// leaf's bytes: indexes, sizes and hashes only.
var (
	// ErrBadProof: an inclusion or consistency proof does not verify, or
	// its sizes, index or hash lengths are out of range.
	ErrBadProof = errors.New("audit: bad proof")
	// ErrBadEntry: a leaf that does not decode to an AuditEntry (not
	// protobuf, or fields this build does not know), a nil entry, or an
	// entry that disagrees with its leaf.
	ErrBadEntry = errors.New("audit: bad entry")
	// ErrBadCheckpoint: a checkpoint note whose text is not exactly the
	// format doc.go gives, or a Checkpoint that cannot be written in it.
	ErrBadCheckpoint = errors.New("audit: bad checkpoint")
	// ErrBadSignature: a checkpoint not signed by the expected signer's key,
	// a signature that does not verify, or a key of a type this package
	// does not sign with (ECDSA P-256 and Ed25519 only).
	ErrBadSignature = errors.New("audit: bad signature")
	// ErrBadCertificate: a signer certificate that does not parse, does not
	// chain to the cluster CA, or is not the node certificate of the signer.
	ErrBadCertificate = errors.New("audit: bad signer certificate")
	// ErrBadExport: an export line that does not parse, or whose leaf,
	// leaf hash and entry disagree.
	ErrBadExport = errors.New("audit: bad export")
)
