package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/internal/errkind"
)

var sentinels = []error{ErrNotFound, ErrVersionMismatch, ErrResidency, ErrUnavailable, ErrUnknownKeyspace,
	ErrInvalidArgument, ErrKeyspaceExists, ErrCannotPlace, ErrConflict, ErrDiskFull, ErrNoEndpoints, ErrPermissionDenied, ErrInternal}

// statusErr builds the error a node returns: a status with an ErrorDetail.
func statusErr(t *testing.T, code codes.Code, msg string, d *pb.ErrorDetail) error {
	t.Helper()
	st := status.New(code, msg)
	if d != nil {
		var err error
		if st, err = st.WithDetails(d); err != nil {
			t.Fatal(err)
		}
	}
	return st.Err()
}

func TestFromStatusKinds(t *testing.T) {
	cases := []struct {
		code codes.Code
		kind pb.ErrorDetail_Kind
		want error
	}{
		{codes.PermissionDenied, pb.ErrorDetail_KIND_RESIDENCY, ErrResidency},
		{codes.FailedPrecondition, pb.ErrorDetail_KIND_VERSION_MISMATCH, ErrVersionMismatch},
		{codes.NotFound, pb.ErrorDetail_KIND_UNKNOWN_KEYSPACE, ErrUnknownKeyspace},
		{codes.InvalidArgument, pb.ErrorDetail_KIND_INVALID, ErrInvalidArgument},
		{codes.AlreadyExists, pb.ErrorDetail_KIND_EXISTS, ErrKeyspaceExists},
		{codes.FailedPrecondition, pb.ErrorDetail_KIND_CANNOT_PLACE, ErrCannotPlace},
		{codes.Aborted, pb.ErrorDetail_KIND_CONFLICT, ErrConflict},
		{codes.ResourceExhausted, pb.ErrorDetail_KIND_DISK_FULL, ErrDiskFull},
		{codes.Unavailable, pb.ErrorDetail_KIND_NOT_LEADER, ErrUnavailable},
		{codes.Unavailable, pb.ErrorDetail_KIND_UNAVAILABLE, ErrUnavailable},
		// The kind decides, whatever the code.
		{codes.Internal, pb.ErrorDetail_KIND_RESIDENCY, ErrResidency},
		{codes.Unknown, pb.ErrorDetail_KIND_VERSION_MISMATCH, ErrVersionMismatch},
		// Without a kind, the code decides.
		{codes.InvalidArgument, pb.ErrorDetail_KIND_UNSPECIFIED, ErrInvalidArgument},
		{codes.NotFound, pb.ErrorDetail_KIND_UNSPECIFIED, ErrNotFound},
		{codes.PermissionDenied, pb.ErrorDetail_KIND_UNSPECIFIED, ErrPermissionDenied},
		{codes.Unauthenticated, pb.ErrorDetail_KIND_UNSPECIFIED, ErrPermissionDenied},
		{codes.Unavailable, pb.ErrorDetail_KIND_UNSPECIFIED, ErrUnavailable},
		{codes.ResourceExhausted, pb.ErrorDetail_KIND_UNSPECIFIED, ErrUnavailable},
		{codes.Aborted, pb.ErrorDetail_KIND_UNSPECIFIED, ErrUnavailable},
		{codes.Internal, pb.ErrorDetail_KIND_UNSPECIFIED, ErrInternal},
		{codes.Unknown, pb.ErrorDetail_KIND_UNSPECIFIED, ErrInternal},
		{codes.FailedPrecondition, pb.ErrorDetail_KIND_UNSPECIFIED, ErrInternal},
	}
	for _, tc := range cases {
		for _, withDetail := range []bool{true, false} {
			if !withDetail && tc.kind != pb.ErrorDetail_KIND_UNSPECIFIED {
				continue
			}
			name := fmt.Sprintf("%v/%v/detail=%v", tc.code, tc.kind, withDetail)
			t.Run(name, func(t *testing.T) {
				var d *pb.ErrorDetail
				if withDetail {
					d = &pb.ErrorDetail{Kind: tc.kind}
				}
				err := fromStatus(statusErr(t, tc.code, "node says no", d))
				for _, s := range sentinels {
					if got := errors.Is(err, s); got != (s == tc.want) {
						t.Errorf("errors.Is(err, %v) = %v", s, got)
					}
				}
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("errors.As(*Error) failed for %v", err)
				}
				if e.Code != tc.code || e.Message != "node says no" || err.Error() != "node says no" || kindOf(err) != tc.kind {
					t.Errorf("got %+v (kind %v)", e, kindOf(err))
				}
				// Wrapping with context keeps both tests working.
				wrapped := fmt.Errorf("put: %w", err)
				if !errors.Is(wrapped, tc.want) || !errors.As(wrapped, &e) {
					t.Errorf("wrapped %v lost its sentinel or details", wrapped)
				}
			})
		}
	}
}

// Every kind of the ErrorDetail enum, sent as a node sends it (errkind's
// code, the detail attached, directly or inside a stream result), comes
// back with its kind, its code and a sentinel of its own.
func TestEveryKindRoundTrips(t *testing.T) {
	for n, name := range pb.ErrorDetail_Kind_name {
		kind := pb.ErrorDetail_Kind(n)
		if kind == pb.ErrorDetail_KIND_UNSPECIFIED {
			continue
		}
		want, ok := sentinelOf[kind]
		if !ok {
			t.Errorf("%s has no client sentinel", name)
			continue
		}
		code, _ := errkind.Code(kind)
		st := errkind.Status(&pb.ErrorDetail{Kind: kind, CurrentVersion: 5}, "node says no")
		inStream := resultError(&pb.StreamResult{Result: &pb.StreamResult_Error{Error: &pb.StreamError{
			Code: uint32(st.Code()), Message: st.Message(), Detail: errkind.Detail(st)}}})
		for how, sent := range map[string]error{"unary": st.Err(), "stream": inStream} {
			err := fromStatus(sent)
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, want) || kindOf(err) != kind || e.Code != code || e.CurrentVersion != 5 {
				t.Errorf("%s (%s): got %v (kind %v, %+v), want %v with code %v", name, how, err, kindOf(err), e, want, code)
			}
		}
	}
}

func TestFromStatusDetails(t *testing.T) {
	err := fromStatus(statusErr(t, codes.PermissionDenied, `keyspace "users" may not be served here`, &pb.ErrorDetail{
		Kind: pb.ErrorDetail_KIND_RESIDENCY, PermittedEndpoints: []string{"10.0.0.1:7400", "10.0.0.2:7400"},
	}))
	var e *Error
	if !errors.Is(err, ErrResidency) || !errors.As(err, &e) {
		t.Fatalf("got %v", err)
	}
	if !slices.Equal(e.PermittedEndpoints, []string{"10.0.0.1:7400", "10.0.0.2:7400"}) {
		t.Errorf("permitted endpoints %v", e.PermittedEndpoints)
	}

	err = fromStatus(statusErr(t, codes.FailedPrecondition, "version mismatch", &pb.ErrorDetail{
		Kind: pb.ErrorDetail_KIND_VERSION_MISMATCH, CurrentVersion: 42,
	}))
	if !errors.As(err, &e) || e.CurrentVersion != 42 || !errors.Is(err, ErrVersionMismatch) {
		t.Errorf("version mismatch: %+v", e)
	}
	// A mismatch on an absent key says so with version 0.
	err = fromStatus(statusErr(t, codes.FailedPrecondition, "version mismatch", &pb.ErrorDetail{
		Kind: pb.ErrorDetail_KIND_VERSION_MISMATCH,
	}))
	if !errors.As(err, &e) || e.CurrentVersion != 0 || !errors.Is(err, ErrVersionMismatch) {
		t.Errorf("version mismatch on an absent key: %+v", e)
	}

	err = fromStatus(statusErr(t, codes.Unavailable, "not the leader", &pb.ErrorDetail{
		Kind: pb.ErrorDetail_KIND_NOT_LEADER, LeaderHint: "10.0.0.3:7400",
	}))
	if !errors.As(err, &e) || e.LeaderHint != "10.0.0.3:7400" || !errors.Is(err, ErrUnavailable) || kindOf(err) != pb.ErrorDetail_KIND_NOT_LEADER {
		t.Errorf("not leader: %+v", e)
	}
}

func TestFromStatusPassesContextErrorsThrough(t *testing.T) {
	cases := []struct {
		name string
		in   error
		want error
	}{
		{"canceled", context.Canceled, context.Canceled},
		{"deadline", context.DeadlineExceeded, context.DeadlineExceeded},
		{"wrapped deadline", fmt.Errorf("rpc: %w", context.DeadlineExceeded), context.DeadlineExceeded},
		{"status canceled", status.Error(codes.Canceled, "context canceled"), context.Canceled},
		{"status deadline", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), context.DeadlineExceeded},
		{"status deadline with an empty detail", statusErr(t, codes.DeadlineExceeded, "deadline", &pb.ErrorDetail{}), context.DeadlineExceeded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := fromStatus(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("fromStatus(%v) = %v, want %v", tc.in, err, tc.want)
			}
			var e *Error
			if errors.As(err, &e) {
				t.Errorf("context error became a node error %+v", e)
			}
			if tc.in == tc.want && err != tc.in {
				t.Errorf("context error %v was replaced by %v", tc.in, err)
			}
		})
	}
}

func TestFromStatusOther(t *testing.T) {
	if err := fromStatus(nil); err != nil {
		t.Errorf("fromStatus(nil) = %v", err)
	}
	// An error that is not a gRPC status (a broken connection) is transient.
	err := fromStatus(io.ErrUnexpectedEOF)
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("fromStatus(io.ErrUnexpectedEOF) = %v, want ErrUnavailable", err)
	}
	if kindOf(err) != pb.ErrorDetail_KIND_UNSPECIFIED {
		t.Errorf("kind of a plain error: %v", kindOf(err))
	}
}
