package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/internal/errkind"
)

// A pipe multiplexes the single-key requests of every goroutine using the
// client onto one KV.Stream per node: a sender packs whatever requests are
// queued into one message, a receiver hands each result to its caller. Under
// concurrency this replaces a gRPC call per request with a share of one
// message, which is most of the CPU a small request costs on both ends.
type pipe struct {
	cc    *grpc.ClientConn
	queue chan *pipeCall
	// unsupported is set once the node answered that it has no KV.Stream.
	unsupported atomic.Bool

	// mu guards stream, opening and closed; it is taken before a
	// pipeStream's mu.
	mu     sync.Mutex
	stream *pipeStream // nil until first use or after a failure
	// opening is closed when the open in progress ends; nil when none is.
	opening chan struct{}
	nextID  atomic.Uint64
	closed  bool
	closeCh chan struct{}
}

// pipeStream is one open KV.Stream and the calls waiting on it.
type pipeStream struct {
	st      pb.KV_StreamClient
	cancel  context.CancelFunc
	mu      sync.Mutex
	pending map[uint64]*pipeCall
	err     error // set once the stream failed
}

type pipeCall struct {
	op   *pb.StreamOp
	ps   *pipeStream
	done chan *pb.StreamResult // buffered 1
	err  error                 // set before done is closed on stream failure
	// state is callQueued until the sender takes the call (callTaken) or
	// its caller gives up first (callDropped). A taken call's sent is
	// closed once the sender is done with its request: the caller's key and
	// value buffers are never read after the caller returns.
	state atomic.Int32
	sent  chan struct{}
}

const (
	callQueued int32 = iota
	callTaken
	callDropped
)

const (
	pipeQueue   = 4096
	maxPipeOps  = 512
	pipeBufSize = 64
)

func newPipe(cc *grpc.ClientConn) *pipe {
	p := &pipe{cc: cc, queue: make(chan *pipeCall, pipeQueue), closeCh: make(chan struct{})}
	go p.sendLoop()
	return p
}

func (p *pipe) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	close(p.closeCh)
	if p.stream != nil {
		p.stream.fail(errors.New("client closed"))
	}
}

// open returns the current stream, opening one if needed. One caller
// opens while the others wait for it; each waits only as long as its ctx
// allows. An open waits for the node's connection to become READY (one
// connection attempt, bounded by Config.ConnectTimeout) and fails at once
// while the connection is in TRANSIENT_FAILURE.
func (p *pipe) open(ctx context.Context) (*pipeStream, error) {
	p.mu.Lock()
	for {
		if p.closed {
			p.mu.Unlock()
			return nil, status.Error(codes.Canceled, "clover: client closed")
		}
		if p.stream != nil && p.stream.failed() == nil {
			ps := p.stream
			p.mu.Unlock()
			return ps, nil
		}
		if p.opening == nil {
			break
		}
		wait := p.opening
		p.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		p.mu.Lock()
	}
	done := make(chan struct{})
	p.opening = done
	p.mu.Unlock()

	ps, err := p.dial(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.opening = nil
	close(done)
	if err != nil {
		return nil, err
	}
	if p.closed {
		ps.cancel()
		return nil, status.Error(codes.Canceled, "clover: client closed")
	}
	p.stream = ps
	go ps.recvLoop()
	return ps, nil
}

// dial opens a KV.Stream. The stream outlives the caller, so it does not
// take the caller's ctx; but a caller that gives up while the stream is
// being opened cancels the open.
func (p *pipe) dial(ctx context.Context) (*pipeStream, error) {
	sctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel)
	st, err := pb.NewKVClient(p.cc).Stream(sctx)
	if !stop() {
		cancel()
		return nil, ctx.Err()
	}
	if err != nil {
		cancel()
		return nil, err
	}
	return &pipeStream{st: st, cancel: cancel, pending: map[uint64]*pipeCall{}}, nil
}

// call sends op on the node's stream and waits for its result. An error is
// in the form a unary call would return (a gRPC status error), so the retry
// logic treats both alike: a request whose stream broke after it was sent
// has an unknown outcome, like a unary call whose connection broke. The
// error of a request that was certainly not sent is marked (notSent).
func (p *pipe) call(ctx context.Context, op *pb.StreamOp) (*pb.StreamResult, error) {
	ps, err := p.open(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// The op goes out only on an open stream: nothing was sent.
		return nil, notSent(err)
	}
	if dl, ok := ctx.Deadline(); ok {
		op.TimeoutMs = uint32(max(time.Until(dl).Milliseconds(), 1))
	}
	c := &pipeCall{op: op, ps: ps, done: make(chan *pb.StreamResult, 1), sent: make(chan struct{})}
	ps.mu.Lock()
	if ps.err != nil {
		ps.mu.Unlock()
		return nil, notSent(ps.err)
	}
	op.Id = p.nextID.Add(1)
	ps.pending[op.Id] = c
	ps.mu.Unlock()

	select {
	case p.queue <- c:
	case <-ctx.Done():
		ps.forget(op.Id)
		return nil, ctx.Err()
	}
	select {
	case res, ok := <-c.done:
		if !ok {
			return nil, c.err
		}
		return res, nil
	case <-ctx.Done():
		if !c.state.CompareAndSwap(callQueued, callDropped) {
			<-c.sent // being sent: wait until the request is serialised
		}
		ps.forget(op.Id)
		return nil, ctx.Err()
	}
}

// sendLoop packs queued calls into messages, one message per stream.
func (p *pipe) sendLoop() {
	batch := make([]*pipeCall, 0, pipeBufSize)
	var group []*pipeCall
	for {
		batch = batch[:0]
		select {
		case c := <-p.queue:
			batch = append(batch, c)
		case <-p.closeCh:
			return
		}
		// A result message wakes several callers at once, and each queues
		// its next request: yield once so the ones already runnable queue
		// theirs before this message is packed. With nothing else to run
		// this returns at once.
		runtime.Gosched()
	more:
		for len(batch) < maxPipeOps {
			select {
			case c := <-p.queue:
				batch = append(batch, c)
			default:
				break more
			}
		}
		taken := batch[:0]
		for _, c := range batch {
			if c.state.CompareAndSwap(callQueued, callTaken) {
				taken = append(taken, c)
			}
		}
		batch = taken
		// Calls queued for a stream that has since failed are already
		// answered; group the rest by stream (almost always one).
		for len(batch) > 0 {
			ps := batch[0].ps
			msg := &pb.StreamRequest{Ops: make([]*pb.StreamOp, 0, len(batch))}
			group = group[:0]
			rest := batch[:0]
			for _, c := range batch {
				if c.ps == ps {
					msg.Ops = append(msg.Ops, c.op)
					group = append(group, c)
				} else {
					rest = append(rest, c)
				}
			}
			batch = rest
			if ps.failed() == nil {
				// io.EOF means the node ended the stream; recvLoop
				// fails it with the node's status (Unimplemented from
				// a node without streams, say), which EOF would hide.
				if err := ps.st.Send(msg); err != nil && !errors.Is(err, io.EOF) {
					ps.fail(err)
				}
			}
			for _, c := range group {
				close(c.sent)
			}
		}
	}
}

// recvLoop hands results to their callers until the stream fails.
func (ps *pipeStream) recvLoop() {
	for {
		msg, err := ps.st.Recv()
		if err != nil {
			ps.fail(err)
			return
		}
		ps.mu.Lock()
		for _, r := range msg.Results {
			if c, ok := ps.pending[r.Id]; ok {
				delete(ps.pending, r.Id)
				c.done <- r
			}
		}
		ps.mu.Unlock()
	}
}

func (ps *pipeStream) failed() error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.err
}

func (ps *pipeStream) forget(id uint64) {
	ps.mu.Lock()
	delete(ps.pending, id)
	ps.mu.Unlock()
}

// fail ends the stream: every call waiting on it gets an Unavailable error
// (outcome unknown for a write that was sent).
func (ps *pipeStream) fail(cause error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.err != nil {
		return
	}
	if _, ok := status.FromError(cause); !ok || status.Code(cause) == codes.OK || status.Code(cause) == codes.Unknown {
		cause = status.Error(codes.Unavailable, fmt.Sprintf("stream broke: %v", cause))
	}
	ps.err = cause
	for id, c := range ps.pending {
		// A call the sender has not taken yet never will be sent on this
		// stream (the sender checks failed() under ps.mu before sending),
		// so the caller may safely send it again.
		c.err = cause
		if c.state.Load() == callQueued {
			c.err = notSent(cause)
		}
		close(c.done)
		delete(ps.pending, id)
	}
	ps.cancel()
}

// resultError turns a StreamResult carrying an error into the status error
// its unary method would have returned.
func resultError(r *pb.StreamResult) error {
	e, ok := r.Result.(*pb.StreamResult_Error)
	if !ok {
		return nil
	}
	return errkind.WithDetail(status.New(codes.Code(e.Error.Code), e.Error.Message), e.Error.Detail).Err()
}
