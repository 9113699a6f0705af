package server

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/placement"
)

// unavailableKV answers every put with Unavailable, as a leader whose
// proposal timed out does: the put reached it and may have been applied.
type unavailableKV struct{ pb.UnimplementedKVServer }

func (unavailableKV) Put(context.Context, *pb.PutRequest) (*pb.PutResponse, error) {
	return nil, status.Error(codes.Unavailable, "transport: Error while dialing: the leader's words")
}

// forwardingNode is a node of fuzzNode's catalogue whose view of the
// shard's leader is de-1 at leaderAddr.
func forwardingNode(t *testing.T, leaderAddr string) (*Server, uint64) {
	t.Helper()
	s := fuzzNode("")
	s.selfRec.GRPC = "127.0.0.1:1"
	s.peers = newPeerConns(nil, nil, keepalive.ClientParameters{Time: 10 * time.Second, Timeout: time.Second})
	t.Cleanup(s.peers.close)
	c := s.catalog()
	c.nodes["de-1"] = &nodeRecord{ID: "de-1", Locality: placement.Locality{Country: "DE"}, GRPCAddr: leaderAddr}
	return s, c.keyspaces[fuzzOneShard].Shards[0].ID
}

func forwardPut(s *Server, shard uint64, hint string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.forward(ctx, shard, hint, func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := pb.NewKVClient(cc).Put(ctx, &pb.PutRequest{Keyspace: fuzzOneShard, Key: []byte("k"), Value: []byte("v")})
		return err
	})
}

// A write forwarded to a leader this node cannot reach never left it: the
// node answers "not the leader", which tells the client the write was
// certainly not applied, so it may send it elsewhere.
func TestForwardToUnreachableLeaderIsNotLeader(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	s, shard := forwardingNode(t, dead)
	err = forwardPut(s, shard, dead)
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("forward to an unreachable leader: %v, want ErrNotLeader", err)
	}
	if st := status.Convert(toStatus(err)); errorDetail(st.Err()).GetKind() != pb.ErrorDetail_KIND_NOT_LEADER {
		t.Fatalf("sent to the client as %v", st)
	}
}

// A write that reached the leader and failed keeps the leader's answer,
// whatever its message: its outcome is unknown.
func TestForwardedFailurePassesThrough(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	pb.RegisterKVServer(g, unavailableKV{})
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	s, shard := forwardingNode(t, ln.Addr().String())
	err = forwardPut(s, shard, ln.Addr().String())
	if errors.Is(err, ErrNotLeader) || status.Code(err) != codes.Unavailable {
		t.Fatalf("forward to a leader that failed the write: %v, want its Unavailable", err)
	}
}
