package client

import (
	"context"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/internal/errkind"
)

// fakeNode is a gRPC server standing in for a Clover node: it serves a fixed
// routing table, answers Put with put (or version 1), and counts KV calls.
type fakeNode struct {
	pb.UnimplementedKVServer
	pb.UnimplementedAdminServer
	addr string

	mu     sync.Mutex
	calls  int // KV calls
	routes *pb.RoutingTableResponse
	put    func(*pb.PutRequest) (*pb.PutResponse, error)
	// stream, when set, serves KV.Stream (unset: Unimplemented, like an
	// older node). streams counts the streams opened.
	stream  func(pb.KV_StreamServer) error
	streams int
}

func (f *fakeNode) Stream(st pb.KV_StreamServer) error {
	f.mu.Lock()
	f.streams++
	h := f.stream
	f.mu.Unlock()
	if h == nil {
		return status.Error(codes.Unimplemented, "method Stream not implemented")
	}
	return h(st)
}

// serveStream answers every op of a stream through the fake's unary
// handlers, until the client goes away.
func (f *fakeNode) serveStream(st pb.KV_StreamServer) error {
	for {
		req, err := st.Recv()
		if err != nil {
			return nil
		}
		resp := &pb.StreamResponse{}
		for _, op := range req.Ops {
			r := &pb.StreamResult{Id: op.Id}
			switch o := op.Op.(type) {
			case *pb.StreamOp_Put:
				pr, err := f.Put(st.Context(), o.Put)
				if err != nil {
					s := status.Convert(err)
					r.Result = &pb.StreamResult_Error{Error: &pb.StreamError{Code: uint32(s.Code()), Message: s.Message(), Detail: errkind.Detail(s)}}
				} else {
					r.Result = &pb.StreamResult_Put{Put: pr}
				}
			case *pb.StreamOp_Get:
				gr, _ := f.Get(st.Context(), o.Get)
				r.Result = &pb.StreamResult_Get{Get: gr}
			case *pb.StreamOp_CompareAndSwap:
				cr, _ := f.CompareAndSwap(st.Context(), o.CompareAndSwap)
				r.Result = &pb.StreamResult_CompareAndSwap{CompareAndSwap: cr}
			}
			resp.Results = append(resp.Results, r)
		}
		if err := st.Send(resp); err != nil {
			return err
		}
	}
}

func (f *fakeNode) streamCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.streams
}

// startFake starts a fake node on a loopback port; it stops at test end.
func startFake(t *testing.T, opts ...grpc.ServerOption) *fakeNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeNode{addr: ln.Addr().String(), routes: &pb.RoutingTableResponse{}}
	s := grpc.NewServer(opts...)
	pb.RegisterKVServer(s, f)
	pb.RegisterAdminServer(s, f)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return f
}

func (f *fakeNode) count() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
}

func (f *fakeNode) kvCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeNode) setRoutes(r *pb.RoutingTableResponse) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes = r
}

func (f *fakeNode) RoutingTable(context.Context, *pb.RoutingTableRequest) (*pb.RoutingTableResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.routes, nil
}

func (f *fakeNode) Put(_ context.Context, req *pb.PutRequest) (*pb.PutResponse, error) {
	f.count()
	f.mu.Lock()
	put := f.put
	f.mu.Unlock()
	if put != nil {
		return put(req)
	}
	return &pb.PutResponse{Version: 1}, nil
}

func (f *fakeNode) Get(_ context.Context, req *pb.GetRequest) (*pb.GetResponse, error) {
	f.count()
	return &pb.GetResponse{}, nil
}

func (f *fakeNode) Delete(_ context.Context, req *pb.DeleteRequest) (*pb.DeleteResponse, error) {
	f.count()
	return &pb.DeleteResponse{Version: 1}, nil
}

func (f *fakeNode) CompareAndSwap(_ context.Context, req *pb.CompareAndSwapRequest) (*pb.CompareAndSwapResponse, error) {
	f.count()
	return &pb.CompareAndSwapResponse{Version: 1}, nil
}

func (f *fakeNode) Batch(context.Context, *pb.BatchRequest) (*pb.BatchResponse, error) {
	f.count()
	return &pb.BatchResponse{Version: 1}, nil
}

func (f *fakeNode) Scan(context.Context, *pb.ScanRequest) (*pb.ScanResponse, error) {
	f.count()
	return &pb.ScanResponse{}, nil
}

// notLeader is the error a follower returns, naming the leader.
func notLeader(hint string) error {
	return errkind.Status(&pb.ErrorDetail{Kind: pb.ErrorDetail_KIND_NOT_LEADER, LeaderHint: hint}, "not the shard leader").Err()
}
