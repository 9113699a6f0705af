// Package acceptloop runs a listener's accept loop for a transport that
// serves each connection on its own goroutine: Accept failures that may
// pass (too many open files, a connection aborted before Accept) are
// retried after a backoff that doubles from MinBackoff to MaxBackoff, and
// the loop ends when its owner shuts down or the listener is closed.
//
// The owner keeps its own policy: what it does with each connection
// (handshake limits, tracking for shutdown) is its serve function, and what
// it does when the listener closes under it is its reaction to the error
// Run returns.
//
//	go func() {
//		defer wg.Done()
//		err := acceptloop.Run(ln, done, func(c net.Conn) bool {
//			if shuttingDown() {
//				return false // Run closes c and returns nil
//			}
//			go serve(c)
//			return true
//		}, func(err error, wait time.Duration) {
//			logger.Warn("accept failed", "err", err, "retry_in", wait)
//		})
//		if err != nil {
//			logger.Error("listener closed under us", "err", err)
//		}
//	}()
package acceptloop
