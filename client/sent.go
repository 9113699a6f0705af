package client

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
)

// Whether a failed write may be sent again is decided by what the client
// itself knows about the attempt, never by the words of an error: a write
// the node may have received has an unknown outcome, and sending it again
// could apply it twice (see request.idempotent). An attempt is certainly
// not sent when
//
//   - on a node's stream, the request was still queued when the stream
//     failed, or the stream could not be opened (the pipe only hands a
//     request to an open stream, see pipe.call);
//   - as a unary call, gRPC never gave the call a stream on a connection:
//     it reports no peer for it (unsentInterceptor). Calls are fail-fast
//     (no grpc.WaitForReady), so a call to a node whose connection is not
//     READY fails that way without being sent; gRPC's transparent retry
//     only resends what the node did not process, and the client's
//     connections disable every other retry (grpc.WithDisableRetry).
//
// Anything else that fails is taken as maybe sent.

// unsentError wraps the error of an attempt that never reached a node.
type unsentError struct{ cause error }

func (e *unsentError) Error() string { return e.cause.Error() }
func (e *unsentError) Unwrap() error { return e.cause }

// notSent marks err as the failure of an attempt that never reached a node.
func notSent(err error) error {
	if err == nil {
		return nil
	}
	var u *unsentError
	if errors.As(err, &u) {
		return err
	}
	return &unsentError{cause: err}
}

// splitSent returns an attempt's error without the mark notSent puts on
// it, and whether the request may have reached the node.
func splitSent(err error) (cause error, maybeSent bool) {
	var u *unsentError
	if errors.As(err, &u) {
		return u.cause, false
	}
	return err, true
}

// unsentInterceptor marks the failure of a unary call that gRPC never gave
// a stream on a connection: it reports the peer of a call only once the
// call has one.
func unsentInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	var p peer.Peer
	err := invoker(ctx, method, req, reply, cc, append(opts[:len(opts):len(opts)], grpc.Peer(&p))...)
	if err != nil && p.Addr == nil {
		return notSent(err)
	}
	return err
}
