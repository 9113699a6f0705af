package client

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/internal/errkind"
)

// Sentinel errors. Test with errors.Is; use errors.As with *Error for details
// (the permitted endpoints of a residency error, the current version of a
// version mismatch).
var (
	ErrNotFound        = errors.New("clover: key not found")
	ErrVersionMismatch = errors.New("clover: version mismatch")
	ErrResidency       = errors.New("clover: keyspace not permitted on this node's jurisdiction")
	ErrUnavailable     = errors.New("clover: unavailable")
	// ErrOutcomeUnknown comes with ErrUnavailable when a write failed after
	// it may have reached its shard's leader: it may or may not have been
	// applied. Read the key to find out before writing again.
	ErrOutcomeUnknown  = errors.New("clover: outcome unknown: the write may or may not have been applied")
	ErrUnknownKeyspace = errors.New("clover: unknown keyspace")
	ErrInvalidArgument = errors.New("clover: invalid argument")
	ErrKeyspaceExists  = errors.New("clover: keyspace exists")
	ErrCannotPlace     = errors.New("clover: policy cannot be met with the live permitted nodes")
	ErrConflict        = errors.New("clover: conflicting write, retry")
	// ErrDiskFull: the shard leader's disk is below its free-space reserve;
	// the write was certainly not applied. Reads go on; writes resume once
	// an operator frees space.
	ErrDiskFull    = errors.New("clover: disk full: writes refused until space is freed")
	ErrNoEndpoints = errors.New("clover: no endpoints configured")
	// ErrPermissionDenied: the node's gateway refused the caller (Error.Rule
	// names the rule), or the caller's certificate was not accepted.
	ErrPermissionDenied = errors.New("clover: permission denied")
	// ErrResourceExhausted: a limit of the node's front door (connections,
	// streams, request rate) was reached; the request was not served, and
	// the client retries it after a backoff within its budget.
	ErrResourceExhausted = errors.New("clover: resource exhausted: a node's limit was reached")
	ErrInternal          = errors.New("clover: internal error")
)

// Error is an error a node returned, with the details Clover attaches.
type Error struct {
	// Message is the node's message.
	Message string
	// PermittedEndpoints, for a residency error, lists the gRPC addresses of
	// nodes that may serve the keyspace.
	PermittedEndpoints []string
	// CurrentVersion, for a version mismatch, is the key's version (0 = absent).
	CurrentVersion uint64
	// Rule, for a permission refusal, names the gateway's rule that refused
	// (for example "caller-jurisdiction", "role").
	Rule string
	// LeaderHint is the shard leader's address when the node knew it.
	LeaderHint string
	// Code is the gRPC status code.
	Code codes.Code

	sentinel error
	kind     pb.ErrorDetail_Kind
}

func (e *Error) Error() string { return e.Message }

// Is makes errors.Is(err, ErrResidency) and the other sentinels work.
func (e *Error) Is(target error) bool { return target == e.sentinel }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.sentinel }

// sentinelOf gives every error kind a node sends its sentinel.
var sentinelOf = map[pb.ErrorDetail_Kind]error{
	pb.ErrorDetail_KIND_RESIDENCY:          ErrResidency,
	pb.ErrorDetail_KIND_VERSION_MISMATCH:   ErrVersionMismatch,
	pb.ErrorDetail_KIND_UNKNOWN_KEYSPACE:   ErrUnknownKeyspace,
	pb.ErrorDetail_KIND_INVALID:            ErrInvalidArgument,
	pb.ErrorDetail_KIND_EXISTS:             ErrKeyspaceExists,
	pb.ErrorDetail_KIND_CANNOT_PLACE:       ErrCannotPlace,
	pb.ErrorDetail_KIND_CONFLICT:           ErrConflict,
	pb.ErrorDetail_KIND_DISK_FULL:          ErrDiskFull,
	pb.ErrorDetail_KIND_PERMISSION_DENIED:  ErrPermissionDenied,
	pb.ErrorDetail_KIND_RESOURCE_EXHAUSTED: ErrResourceExhausted,
	pb.ErrorDetail_KIND_NOT_LEADER:         ErrUnavailable,
	pb.ErrorDetail_KIND_UNAVAILABLE:        ErrUnavailable,
}

// bareCode is the sentinel of a status without a kind: one from gRPC
// itself (no connection, a failed TLS handshake), a proxy, or a node's
// internal error. Any other code is ErrInternal.
var bareCode = map[codes.Code]error{
	codes.InvalidArgument:   ErrInvalidArgument,
	codes.NotFound:          ErrNotFound,
	codes.PermissionDenied:  ErrPermissionDenied,
	codes.Unauthenticated:   ErrPermissionDenied,
	codes.Unavailable:       ErrUnavailable,
	codes.ResourceExhausted: ErrUnavailable,
	codes.Aborted:           ErrUnavailable,
}

// fromStatus converts a gRPC error into a client error: the kind of its
// ErrorDetail decides the sentinel, whatever the code; without a kind the
// code does. Context errors, and the Canceled and DeadlineExceeded codes
// without a kind, come back as the context errors.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	e := &Error{Message: st.Message(), Code: st.Code()}
	if d := errkind.Detail(st); d != nil {
		e.kind = d.Kind
		e.PermittedEndpoints = d.PermittedEndpoints
		e.CurrentVersion = d.CurrentVersion
		e.LeaderHint = d.LeaderHint
		e.Rule = d.Rule
	}
	if s, ok := sentinelOf[e.kind]; ok {
		e.sentinel = s
		return e
	}
	switch st.Code() {
	case codes.Canceled:
		return context.Canceled
	case codes.DeadlineExceeded:
		return context.DeadlineExceeded
	}
	e.sentinel = ErrInternal
	if s, ok := bareCode[st.Code()]; ok {
		e.sentinel = s
	}
	return e
}

// kindOf returns the Clover error kind of an error returned by fromStatus.
func kindOf(err error) pb.ErrorDetail_Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.kind
	}
	return pb.ErrorDetail_KIND_UNSPECIFIED
}
