package server

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/clover-kv/clover/api/cloverv1"
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

// toStatus maps a domain error to a gRPC status error. Context errors map to
// their gRPC codes; a status error passes through.
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
	var code codes.Code
	switch {
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, ErrResidency):
		code, detail.Kind = codes.PermissionDenied, pb.ErrorDetail_KIND_RESIDENCY
	case errors.Is(err, ErrNotLeader):
		code, detail.Kind = codes.Unavailable, pb.ErrorDetail_KIND_NOT_LEADER
	case errors.Is(err, ErrUnknownKeyspace):
		code, detail.Kind = codes.NotFound, pb.ErrorDetail_KIND_UNKNOWN_KEYSPACE
	case errors.Is(err, ErrKeyspaceExists):
		code, detail.Kind = codes.AlreadyExists, pb.ErrorDetail_KIND_EXISTS
	case errors.Is(err, ErrInvalid):
		code, detail.Kind = codes.InvalidArgument, pb.ErrorDetail_KIND_INVALID
	case errors.Is(err, ErrCannotPlace):
		code, detail.Kind = codes.FailedPrecondition, pb.ErrorDetail_KIND_CANNOT_PLACE
	case errors.Is(err, ErrVersionMismatch):
		code, detail.Kind = codes.FailedPrecondition, pb.ErrorDetail_KIND_VERSION_MISMATCH
	case errors.Is(err, ErrConflict):
		code, detail.Kind = codes.Aborted, pb.ErrorDetail_KIND_CONFLICT
	case errors.Is(err, ErrDiskFull):
		code, detail.Kind = codes.ResourceExhausted, pb.ErrorDetail_KIND_DISK_FULL
	case errors.Is(err, ErrUnavailable):
		code, detail.Kind = codes.Unavailable, pb.ErrorDetail_KIND_UNAVAILABLE
	default:
		code = codes.Internal
	}
	st := status.New(code, err.Error())
	if withDetail, derr := st.WithDetails(detail); derr == nil {
		st = withDetail
	}
	return st.Err()
}

func isNotLeader(err error) bool { return errors.Is(err, ErrNotLeader) }

func isMismatch(err error) bool { return errors.Is(err, ErrVersionMismatch) }
