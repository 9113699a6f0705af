package acceptloop

import (
	"errors"
	"net"
	"time"
)

// The wait after a failed Accept starts at MinBackoff and doubles with
// every failure in a row, up to MaxBackoff; an accepted connection resets
// it.
const (
	MinBackoff = 5 * time.Millisecond
	MaxBackoff = time.Second
)

// Run accepts connections on ln and hands each to serve, in the calling
// goroutine, until one of these ends it:
//
//   - done is closed (the owner shuts down; it closes ln too, which ends a
//     blocked Accept): Run returns nil, also while it waits out a backoff;
//   - serve returns false (the owner is shutting down and takes no more
//     connections): Run closes that connection and returns nil;
//   - ln is closed while done is still open: Run returns Accept's error,
//     which wraps net.ErrClosed.
//
// Any other Accept error is handed to retry with the wait before the next
// Accept. serve must not block: it starts the connection's own goroutine.
// retry may be nil.
func Run(ln net.Listener, done <-chan struct{}, serve func(net.Conn) bool, retry func(err error, wait time.Duration)) error {
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if closed(done) {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			backoff = min(max(2*backoff, MinBackoff), MaxBackoff)
			if retry != nil {
				retry(err, backoff)
			}
			if !wait(done, backoff) {
				return nil
			}
			continue
		}
		backoff = 0
		if !serve(conn) {
			_ = conn.Close()
			return nil
		}
	}
}

func closed(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// wait waits d, or until done is closed: false then.
func wait(done <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return false
	case <-t.C:
		return true
	}
}
