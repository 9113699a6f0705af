package server

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/clover-kv/clover/access"
	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/internal/errkind"
)

// Domain errors of a node. They are mapped to gRPC status codes with an
// ErrorDetail once, at the edge (toStatus).
var (
	ErrResidency       = errors.New("residency: this node may not serve the keyspace")
	ErrNotLeader       = errors.New("not the shard leader")
	ErrUnknownKeyspace = errors.New("unknown keyspace")
	ErrKeyspaceExists  = errors.New("keyspace exists")
	ErrInvalid         = errors.New("invalid argument")
	ErrUnavailable     = errors.New("unavailable")
	ErrCannotPlace     = errors.New("cannot place within policy")
	ErrVersionMismatch = errors.New("version mismatch")
	ErrConflict        = errors.New("conflicting write in the same entry")
	ErrDiskFull        = errors.New("disk full")
	// ErrPermissionDenied: the gateway refused the caller; the error names
	// the rule (see package access).
	ErrPermissionDenied = errors.New("permission denied")
	// ErrResourceExhausted: a front-door limit (connections, streams,
	// request rate) was reached; the request was not served.
	ErrResourceExhausted = errors.New("resource exhausted")
)

// apiError carries the details a client needs to act on an error.
type apiError struct {
	err    error // one of the sentinels above, wrapped with context
	detail *pb.ErrorDetail
}

func (e *apiError) Error() string { return e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

func residencyError(ks string, endpoints []string) error {
	return &apiError{
		err: fmt.Errorf("%w: keyspace %q is not permitted on this node's jurisdiction; permitted endpoints: %v",
			ErrResidency, ks, endpoints),
		detail: &pb.ErrorDetail{Kind: pb.ErrorDetail_KIND_RESIDENCY, PermittedEndpoints: endpoints},
	}
}

func notLeaderError(shard uint64, leaderAddr string) error {
	return &apiError{
		err:    fmt.Errorf("%w: shard %d (leader hint %q)", ErrNotLeader, shard, leaderAddr),
		detail: &pb.ErrorDetail{Kind: pb.ErrorDetail_KIND_NOT_LEADER, LeaderHint: leaderAddr, ShardId: shard},
	}
}

func mismatchError(current uint64) error {
	return &apiError{
		err:    fmt.Errorf("%w: current version %d", ErrVersionMismatch, current),
		detail: &pb.ErrorDetail{Kind: pb.ErrorDetail_KIND_VERSION_MISMATCH, CurrentVersion: current},
	}
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

func unavailablef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnavailable, fmt.Sprintf(format, args...))
}

// kinds gives each domain error its kind, in the order toStatus tries
// them; errkind gives the kind its gRPC code.
var kinds = []struct {
	err  error
	kind pb.ErrorDetail_Kind
}{
	{ErrResidency, pb.ErrorDetail_KIND_RESIDENCY},
	{ErrNotLeader, pb.ErrorDetail_KIND_NOT_LEADER},
	{ErrUnknownKeyspace, pb.ErrorDetail_KIND_UNKNOWN_KEYSPACE},
	{ErrKeyspaceExists, pb.ErrorDetail_KIND_EXISTS},
	{ErrInvalid, pb.ErrorDetail_KIND_INVALID},
	{ErrCannotPlace, pb.ErrorDetail_KIND_CANNOT_PLACE},
	{ErrVersionMismatch, pb.ErrorDetail_KIND_VERSION_MISMATCH},
	{ErrConflict, pb.ErrorDetail_KIND_CONFLICT},
	{ErrDiskFull, pb.ErrorDetail_KIND_DISK_FULL},
	{ErrPermissionDenied, pb.ErrorDetail_KIND_PERMISSION_DENIED},
	{ErrResourceExhausted, pb.ErrorDetail_KIND_RESOURCE_EXHAUSTED},
	{ErrUnavailable, pb.ErrorDetail_KIND_UNAVAILABLE},
}

// kindOf returns the kind of a domain error, KIND_UNSPECIFIED for an error
// that wraps none of the sentinels (an internal error).
func kindOf(err error) pb.ErrorDetail_Kind {
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			return k.kind
		}
	}
	return pb.ErrorDetail_KIND_UNSPECIFIED
}

// toStatus maps a domain error to a gRPC status error carrying an
// ErrorDetail: the code of its kind (errkind), Internal for an error of no
// kind. Context errors map to their gRPC codes; a status error passes
// through.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	detail := &pb.ErrorDetail{}
	var ae *apiError
	if errors.As(err, &ae) {
		detail = ae.detail
	}
	switch {
	case errors.Is(err, context.Canceled):
		return errkind.WithDetail(status.New(codes.Canceled, err.Error()), detail).Err()
	case errors.Is(err, context.DeadlineExceeded):
		return errkind.WithDetail(status.New(codes.DeadlineExceeded, err.Error()), detail).Err()
	}
	detail.Kind = kindOf(err)
	return errkind.Status(detail, err.Error()).Err()
}

func isNotLeader(err error) bool { return errors.Is(err, ErrNotLeader) }

func isMismatch(err error) bool { return errors.Is(err, ErrVersionMismatch) }

// permissionDenied is the gateway's refusal: the rule and the reason, never
// a key or value.
func permissionDenied(d access.Decision) error {
	return &apiError{
		err:    fmt.Errorf("%w by rule %s: %s", ErrPermissionDenied, d.Rule, d.Reason),
		detail: &pb.ErrorDetail{Kind: pb.ErrorDetail_KIND_PERMISSION_DENIED, Rule: string(d.Rule)},
	}
}
