package server

import (
	"testing"

	pb "github.com/clover-kv/clover/api/cloverv1"
)

// judgeDigests calls replicas identical when they hold the same data, even
// at different applied indexes (a follower that has not yet learnt that the
// leader's empty tail entry committed); different data is divergence only
// at the same index.
func TestJudgeDigests(t *testing.T) {
	d := func(index, hash, keys uint64) *pb.ReplicaDigest {
		return &pb.ReplicaDigest{AppliedIndex: index, Hash: hash, Keys: keys}
	}
	for _, tc := range []struct {
		name string
		ds   []*pb.ReplicaDigest
		want string
	}{
		{"none", nil, checkUnreachable},
		{"same index, same data", []*pb.ReplicaDigest{d(9, 7, 3), d(9, 7, 3), d(9, 7, 3)}, checkIdentical},
		{"behind by an empty entry", []*pb.ReplicaDigest{d(10, 7, 3), d(9, 7, 3), d(9, 7, 3)}, checkIdentical},
		{"same index, other hash", []*pb.ReplicaDigest{d(9, 7, 3), d(9, 8, 3), d(9, 7, 3)}, checkDiverged},
		{"same index, other key count", []*pb.ReplicaDigest{d(9, 7, 3), d(9, 7, 3), d(9, 7, 4)}, checkDiverged},
		{"behind, other data", []*pb.ReplicaDigest{d(10, 7, 3), d(9, 8, 2), d(10, 7, 3)}, checkUnsettled},
		{"one unreachable", []*pb.ReplicaDigest{d(9, 7, 3), {Error: "down"}, d(9, 7, 3)}, checkUnreachable},
	} {
		if got := judgeDigests(tc.ds); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
