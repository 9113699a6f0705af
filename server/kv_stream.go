package server

import (
	"context"
	"runtime"
	"sync"
	"time"

	"google.golang.org/grpc/status"

	"github.com/clover-kv/clover/access"
	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/internal/errkind"
)

const (
	// maxStreamResults bounds the results packed into one StreamResponse.
	maxStreamResults = 1024
	// maxStreamInFlight bounds the requests of one stream running at once;
	// past it the stream stops reading (flow control pushes back on the
	// client).
	maxStreamInFlight = 4096
)

// Stream serves single-key requests multiplexed on one stream. Every request
// runs concurrently, exactly as its unary method would (same checks, same
// residency refusal, same forwarding); results are sent as they complete,
// packed with whichever other results are ready.
func (k *kvService) Stream(st pb.KV_StreamServer) error {
	ctx := st.Context()
	results := make(chan *pb.StreamResult, maxStreamResults)
	sendErr := make(chan error, 1)
	go func() { sendErr <- streamSender(st, results) }()

	var wg sync.WaitGroup
	slots := make(chan struct{}, maxStreamInFlight)
	// Requests run on a pool of this stream's goroutines that outlive one
	// request: a goroutine per request would grow a new stack for each
	// (at thousands of reads a second, copying stacks cost a tenth of a
	// node's CPU). A request starts a new goroutine only when none is idle;
	// idle ones end after streamWorkerIdle, and all end with the stream.
	work := make(chan *pb.StreamOp)
	run := func(op *pb.StreamOp) {
		res := k.streamOp(ctx, op)
		select {
		case results <- res:
		case <-ctx.Done():
		}
		<-slots
	}
	worker := func(op *pb.StreamOp) {
		defer wg.Done()
		run(op)
		idle := time.NewTimer(streamWorkerIdle)
		defer idle.Stop()
		for {
			select {
			case op, ok := <-work:
				if !ok {
					return
				}
				run(op)
				idle.Reset(streamWorkerIdle)
			case <-idle.C:
				return
			}
		}
	}
	lim := streamLimitOf(ctx)
recv:
	for {
		req, err := st.Recv()
		if err != nil {
			break // io.EOF: the client is done; otherwise the stream broke
		}
		for _, op := range req.Ops {
			if serr := lim.refuse(); serr != nil {
				// Over the caller's rate: this request alone is refused.
				select {
				case results <- &pb.StreamResult{Id: op.Id, Result: &pb.StreamResult_Error{Error: serr}}:
				case <-ctx.Done():
					break recv
				}
				continue
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				break recv
			}
			select {
			case work <- op:
			default:
				wg.Add(1)
				go worker(op)
			}
		}
	}
	close(work)
	wg.Wait()
	close(results)
	return <-sendErr
}

// streamWorkerIdle is how long an idle goroutine of a stream's pool waits
// for another request before it ends.
const streamWorkerIdle = 5 * time.Second

// streamSender sends results as they complete, packing every result that
// is ready into one message.
func streamSender(st pb.KV_StreamServer, results <-chan *pb.StreamResult) error {
	var failed error
	for res := range results {
		if failed != nil {
			continue // drain so request goroutines never block
		}
		msg := &pb.StreamResponse{Results: append(make([]*pb.StreamResult, 0, 8), res)}
		// One applied entry completes several requests at once: yield
		// once so the ones already runnable hand in their results before
		// this message is packed.
		runtime.Gosched()
	more:
		for len(msg.Results) < maxStreamResults {
			select {
			case r, ok := <-results:
				if !ok {
					break more
				}
				msg.Results = append(msg.Results, r)
			default:
				break more
			}
		}
		if err := st.Send(msg); err != nil {
			failed = err
		}
	}
	return failed
}

// streamOp runs one request through its unary handler.
func (k *kvService) streamOp(ctx context.Context, op *pb.StreamOp) *pb.StreamResult {
	if op.TimeoutMs > 0 {
		oc := newOpContext(ctx, time.Duration(op.TimeoutMs)*time.Millisecond)
		defer oc.release()
		ctx = oc
	}
	res := &pb.StreamResult{Id: op.Id}
	if aop, name, ks, key := streamOpAccess(op); aop != 0 {
		if err := k.s.gate.decideRequest(ctx, aop, name, ks, key); err != nil {
			res.Result = &pb.StreamResult_Error{Error: streamError(err)}
			return res
		}
	}
	var err error
	switch o := op.Op.(type) {
	case *pb.StreamOp_Put:
		var r *pb.PutResponse
		if r, err = k.Put(ctx, o.Put); err == nil {
			res.Result = &pb.StreamResult_Put{Put: r}
		}
	case *pb.StreamOp_Get:
		var r *pb.GetResponse
		if r, err = k.Get(ctx, o.Get); err == nil {
			res.Result = &pb.StreamResult_Get{Get: r}
		}
	case *pb.StreamOp_Delete:
		var r *pb.DeleteResponse
		if r, err = k.Delete(ctx, o.Delete); err == nil {
			res.Result = &pb.StreamResult_Delete{Delete: r}
		}
	case *pb.StreamOp_CompareAndSwap:
		var r *pb.CompareAndSwapResponse
		if r, err = k.CompareAndSwap(ctx, o.CompareAndSwap); err == nil {
			res.Result = &pb.StreamResult_CompareAndSwap{CompareAndSwap: r}
		}
	case *pb.StreamOp_Batch:
		var r *pb.BatchResponse
		if r, err = k.Batch(ctx, o.Batch); err == nil {
			res.Result = &pb.StreamResult_Batch{Batch: r}
		}
	default:
		err = toStatus(invalidf("stream request %d carries no known operation", op.Id))
	}
	if err != nil {
		res.Result = &pb.StreamResult_Error{Error: streamError(err)}
	}
	return res
}

// streamError carries a unary method's error status inside a stream result.
func streamError(err error) *pb.StreamError {
	st := status.Convert(toStatus(err))
	return &pb.StreamError{Code: uint32(st.Code()), Message: st.Message(), Detail: errkind.Detail(st)}
}

// streamOpAccess is what the gateway decides for one request of a stream:
// its operation, its name in audit entries, its keyspace and key.
func streamOpAccess(op *pb.StreamOp) (access.Op, string, string, []byte) {
	switch o := op.Op.(type) {
	case *pb.StreamOp_Get:
		return access.Read, "get", o.Get.GetKeyspace(), o.Get.GetKey()
	case *pb.StreamOp_Put:
		return access.Write, "put", o.Put.GetKeyspace(), o.Put.GetKey()
	case *pb.StreamOp_Delete:
		return access.Write, "delete", o.Delete.GetKeyspace(), o.Delete.GetKey()
	case *pb.StreamOp_CompareAndSwap:
		return access.Write, "cas", o.CompareAndSwap.GetKeyspace(), o.CompareAndSwap.GetKey()
	case *pb.StreamOp_Batch:
		return access.Write, "batch", o.Batch.GetKeyspace(), requestKey(o.Batch)
	}
	return 0, "", "", nil // refused: no known operation
}
