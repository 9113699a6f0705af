package bench

import (
	"context"
	"errors"
)

// DB is one client-library instance of the store under test. The harness
// shares each DB among several workers, so implementations must be safe for
// concurrent use. Keys and values are only valid during a call: the harness
// reuses key buffers once the call returns.
type DB interface {
	// Read reads key. A missing key returns an error matching ErrNotFound.
	Read(ctx context.Context, key []byte) error
	// Put writes value under key; inserts and updates both use it.
	Put(ctx context.Context, key, value []byte) error
	// Scan reads up to n records in key order, starting at start, and
	// returns how many it read.
	Scan(ctx context.Context, start []byte, n int) (int, error)
	// Close releases the instance.
	Close() error
}

// ErrNotFound is returned by DB.Read for a missing key. Such reads count as
// not found, apart from other errors.
var ErrNotFound = errors.New("bench: record not found")

// Op is an operation type.
type Op uint8

// Operation types, with YCSB's names.
const (
	OpRead Op = iota
	OpUpdate
	OpInsert
	OpScan
	OpReadModifyWrite
	numOps
)

var opNames = [numOps]string{"READ", "UPDATE", "INSERT", "SCAN", "READ-MODIFY-WRITE"}

func (o Op) String() string {
	if o < numOps {
		return opNames[o]
	}
	return "UNKNOWN"
}

// Phase is the load phase (insert the records) or the run phase (the
// operation mix).
type Phase uint8

// Phases.
const (
	PhaseLoad Phase = iota
	PhaseRun
)

func (p Phase) String() string {
	if p == PhaseLoad {
		return "load"
	}
	return "run"
}
