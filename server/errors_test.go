package server

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/internal/errkind"
)

// Every kind of the ErrorDetail enum has a domain error, and toStatus
// sends that error, wrapped with context as the services return it, with
// the kind and the code errkind gives it.
func TestEveryKindHasADomainError(t *testing.T) {
	byKind := map[pb.ErrorDetail_Kind]error{}
	for _, k := range kinds {
		byKind[k.kind] = k.err
	}
	for n, name := range pb.ErrorDetail_Kind_name {
		kind := pb.ErrorDetail_Kind(n)
		if kind == pb.ErrorDetail_KIND_UNSPECIFIED {
			continue
		}
		sentinel, ok := byKind[kind]
		if !ok {
			t.Errorf("%s has no domain error in kinds", name)
			continue
		}
		st, _ := status.FromError(toStatus(fmt.Errorf("shard 7: %w", sentinel)))
		want, _ := errkind.Code(kind)
		if st.Code() != want || errkind.Detail(st).GetKind() != kind {
			t.Errorf("%s: toStatus gave code %v kind %v, want %v %v", name, st.Code(), errkind.Detail(st).GetKind(), want, kind)
		}
	}
}

func TestToStatusDetailsAndOthers(t *testing.T) {
	st := status.Convert(toStatus(notLeaderError(9, "10.0.0.3:7400")))
	if d := errkind.Detail(st); st.Code() != codes.Unavailable || d.GetKind() != pb.ErrorDetail_KIND_NOT_LEADER || d.GetLeaderHint() != "10.0.0.3:7400" || d.GetShardId() != 9 {
		t.Errorf("not leader: %v %v", st, d)
	}
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("apply: %w", context.Canceled), codes.Canceled},
		{fmt.Errorf("apply: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{errors.New("pebble: something broke"), codes.Internal},
	} {
		st := status.Convert(toStatus(tc.err))
		if st.Code() != tc.want || errkind.Detail(st).GetKind() != pb.ErrorDetail_KIND_UNSPECIFIED {
			t.Errorf("%v: %v, want %v without a kind", tc.err, st, tc.want)
		}
	}
	passed := status.Error(codes.Unavailable, "from a peer")
	if got := toStatus(passed); got != passed {
		t.Errorf("a status error was rewritten: %v", got)
	}
}
