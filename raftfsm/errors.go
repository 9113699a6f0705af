package raftfsm

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Sentinel errors. Every error this package returns wraps one of them (or a
// Pebble / I/O error) so callers test with errors.Is. No error string ever
// contains a user key or value.
var (
	// ErrCorrupt reports bytes that fail validation: a Raft entry, a stored
	// record, a log record or a snapshot stream that is truncated, has a bad
	// checksum, an unknown format version or inconsistent lengths.
	ErrCorrupt = errors.New("raftfsm: corrupt data")

	// ErrVersionMismatch reports a failed condition. The Result's Err is a
	// *MismatchError that says which op failed and the key's current version.
	ErrVersionMismatch = errors.New("raftfsm: version mismatch")

	// ErrConflict reports a command that writes a key already written by an
	// earlier command of the same Raft entry. It wrote nothing; the proposer
	// retries it in a later entry.
	ErrConflict = errors.New("raftfsm: key already written in this entry")

	// ErrAlreadyApplied is the result of an entry whose index is not above the
	// persisted applied index (replay after restart). Its original result
	// cannot be recomputed.
	ErrAlreadyApplied = errors.New("raftfsm: entry already applied")

	// ErrInvalidCommand reports a command that is well formed on the wire but
	// not valid (unknown op kind, empty or oversized key, duplicate key, ...).
	// It is decided deterministically at apply time and writes nothing.
	ErrInvalidCommand = errors.New("raftfsm: invalid command")

	// ErrHalted is wrapped by the sticky error of an FSM that stopped applying
	// because continuing could make replicas diverge (an entry that does not
	// decode, a stored record that does not parse, a failed Pebble write).
	ErrHalted = errors.New("raftfsm: state machine halted")

	// ErrRestoreRefused is wrapped, together with the Guard's error, when
	// Options.Guard refuses a restore.
	ErrRestoreRefused = errors.New("raftfsm: restore refused")

	// ErrSnapshotTooLarge reports a snapshot whose restore batch would exceed
	// Options.MaxRestoreBytes. State is untouched.
	ErrSnapshotTooLarge = errors.New("raftfsm: snapshot too large to restore in one batch")

	// ErrAuditRange reports a read of the audit stream beyond its tree: a
	// leaf or stored hash the view's tree does not hold, or a non-positive
	// limit.
	ErrAuditRange = errors.New("raftfsm: beyond the audit tree")

	// ErrKeyNotFound is returned by LogStore.Get and LogStore.GetUint64 for a
	// missing key. Its text is exactly "not found" because hashicorp/raft
	// compares err.Error() with that string (as raft-boltdb returns it).
	ErrKeyNotFound = errors.New("not found")
)

// MismatchError is the error of a command whose condition failed. It wraps
// ErrVersionMismatch; retrieve it with errors.As.
type MismatchError struct {
	// OpIndex is the position in Command.Ops of the first op whose
	// condition failed.
	OpIndex int
	// Current is the key's version when the command was applied; 0 means
	// the key did not exist.
	Current uint64
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%v: op %d, current version %d", ErrVersionMismatch, e.OpIndex, e.Current)
}

// Unwrap returns ErrVersionMismatch.
func (e *MismatchError) Unwrap() error { return ErrVersionMismatch }

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// storageErr marks an error Pebble reports as corruption (a block checksum
// mismatch in a data file, say) with ErrCorrupt too, so callers need only
// test for ErrCorrupt. Other errors pass through.
func storageErr(err error) error {
	if err != nil && !errors.Is(err, ErrCorrupt) && pebble.IsCorruptionError(err) {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}
