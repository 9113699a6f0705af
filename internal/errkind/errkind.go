// Package errkind is the one table of Clover's error kinds: the gRPC status
// code a node answers each pb.ErrorDetail_Kind with. Nodes build their
// error statuses with Status, clients read the kind back with Detail, and
// both take the code from Code, so the two sides cannot disagree.
//
// A new kind is added to the ErrorDetail enum in clover.proto, then here
// with its code, then to the server's sentinel table (server/errors.go) and
// the client's (client/errors.go); each of the three has a test that walks
// the enum and fails until the kind is there.
//
//	st := errkind.Status(&pb.ErrorDetail{Kind: pb.ErrorDetail_KIND_NOT_LEADER, LeaderHint: addr}, msg)
//	d := errkind.Detail(st) // the same detail, nil for a status without one
package errkind

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/clover-kv/clover/api/cloverv1"
)

// codeOf maps every kind but KIND_UNSPECIFIED to its gRPC code. Two kinds
// may share a code (the detail tells them apart); a client that receives a
// status without a detail (from gRPC itself, a proxy, another server) reads
// the bare code on its own terms.
var codeOf = map[pb.ErrorDetail_Kind]codes.Code{
	pb.ErrorDetail_KIND_RESIDENCY:          codes.PermissionDenied,
	pb.ErrorDetail_KIND_NOT_LEADER:         codes.Unavailable,
	pb.ErrorDetail_KIND_VERSION_MISMATCH:   codes.FailedPrecondition,
	pb.ErrorDetail_KIND_UNKNOWN_KEYSPACE:   codes.NotFound,
	pb.ErrorDetail_KIND_INVALID:            codes.InvalidArgument,
	pb.ErrorDetail_KIND_UNAVAILABLE:        codes.Unavailable,
	pb.ErrorDetail_KIND_CANNOT_PLACE:       codes.FailedPrecondition,
	pb.ErrorDetail_KIND_EXISTS:             codes.AlreadyExists,
	pb.ErrorDetail_KIND_CONFLICT:           codes.Aborted,
	pb.ErrorDetail_KIND_DISK_FULL:          codes.ResourceExhausted,
	pb.ErrorDetail_KIND_PERMISSION_DENIED:  codes.PermissionDenied,
	pb.ErrorDetail_KIND_RESOURCE_EXHAUSTED: codes.ResourceExhausted,
}

// Code returns the gRPC code of kind, and false for KIND_UNSPECIFIED or a
// kind the table does not know (codes.Internal then).
func Code(kind pb.ErrorDetail_Kind) (codes.Code, bool) {
	c, ok := codeOf[kind]
	if !ok {
		return codes.Internal, false
	}
	return c, true
}

// Status returns the status a node answers with for an error of
// detail.Kind: the kind's code, msg, and detail attached. A nil detail or
// one of KIND_UNSPECIFIED gives codes.Internal.
func Status(detail *pb.ErrorDetail, msg string) *status.Status {
	code, _ := Code(detail.GetKind())
	return WithDetail(status.New(code, msg), detail)
}

// WithDetail returns st with detail attached (st itself for a nil detail
// or one that cannot be attached).
func WithDetail(st *status.Status, detail *pb.ErrorDetail) *status.Status {
	if detail == nil {
		return st
	}
	if withDetail, err := st.WithDetails(detail); err == nil {
		return withDetail
	}
	return st
}

// Detail returns the ErrorDetail attached to st, nil when there is none.
func Detail(st *status.Status) *pb.ErrorDetail {
	for _, d := range st.Details() {
		if ed, ok := d.(*pb.ErrorDetail); ok {
			return ed
		}
	}
	return nil
}
