package errkind

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/clover-kv/clover/api/cloverv1"
)

// Every kind of the ErrorDetail enum has a code, and a status built for it
// carries the kind and its details back, also after travelling as a
// status error (as a unary call returns it).
func TestEveryKindRoundTrips(t *testing.T) {
	for n, name := range pb.ErrorDetail_Kind_name {
		kind := pb.ErrorDetail_Kind(n)
		if kind == pb.ErrorDetail_KIND_UNSPECIFIED {
			continue
		}
		code, ok := Code(kind)
		if !ok || code == codes.OK || code == codes.Unknown || code == codes.Internal {
			t.Errorf("%s: code %v (known %v): every kind needs its own code in the table", name, code, ok)
			continue
		}
		want := &pb.ErrorDetail{Kind: kind, LeaderHint: "10.0.0.1:7400", PermittedEndpoints: []string{"10.0.0.2:7400"}, CurrentVersion: 7, ShardId: 3}
		st, ok := status.FromError(Status(want, "node says no").Err())
		if !ok || st.Code() != code || st.Message() != "node says no" {
			t.Errorf("%s: status %v, want code %v and the message", name, st, code)
		}
		if got := Detail(st); !proto.Equal(got, want) {
			t.Errorf("%s: detail %v, want %v", name, got, want)
		}
	}
}

func TestUnspecifiedAndMissingDetail(t *testing.T) {
	if code, ok := Code(pb.ErrorDetail_KIND_UNSPECIFIED); ok || code != codes.Internal {
		t.Errorf("KIND_UNSPECIFIED: code %v, known %v; want Internal, false", code, ok)
	}
	if code, ok := Code(pb.ErrorDetail_Kind(1 << 20)); ok || code != codes.Internal {
		t.Errorf("an unknown kind: code %v, known %v; want Internal, false", code, ok)
	}
	st := Status(&pb.ErrorDetail{}, "internal")
	if st.Code() != codes.Internal || Detail(st) == nil {
		t.Errorf("a detail without a kind: %v, want Internal with the detail attached", st)
	}
	if d := Detail(status.New(codes.Unavailable, "no connection")); d != nil {
		t.Errorf("a status without a detail has detail %v", d)
	}
	if st := Status(nil, "x"); st.Code() != codes.Internal || Detail(st) != nil {
		t.Errorf("Status(nil): %v", st)
	}
}
