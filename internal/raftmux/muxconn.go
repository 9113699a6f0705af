package raftmux

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// muxConn is one multiplexed connection between two nodes. Any goroutine
// appends whole frames to its output buffer; one writer goroutine sends
// everything that accumulated while its last write was in flight, so the
// frames of many shards that are ready together share one write. One reader
// goroutine hands every frame to handle.
//
// A dialed muxConn also tracks its calls: requests waiting for their
// response. A call that waits longer than the timeout fails alone; if
// nothing at all arrived for that long while calls wait, the connection is
// taken as dead and closed, which fails every call on it.
type muxConn struct {
	c       net.Conn
	timeout time.Duration
	handle  func(*muxConn, frame) error // runs on the reader goroutine

	lastRead atomic.Int64 // unix nanos of the last frame read

	mu      sync.Mutex
	out     []byte
	closed  bool
	err     error
	calls   map[uint64]*call
	nextID  uint64
	wake    chan struct{}
	done    chan struct{}
	stopped sync.WaitGroup
}

// call is one request waiting for its response.
type call struct {
	ch    chan callResult // buffered: the reader never blocks on it
	start time.Time
}

type callResult struct {
	f   frame
	err error
}

var callPool = sync.Pool{New: func() any { return &call{ch: make(chan callResult, 1)} }}

// newMuxConn starts the writer and reader of c (and, when dialed, the
// watchdog of its calls). done closes when the connection fails or is
// closed.
func newMuxConn(c net.Conn, timeout time.Duration, dialed bool, handle func(*muxConn, frame) error) *muxConn {
	mc := &muxConn{
		c:       c,
		timeout: timeout,
		handle:  handle,
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	mc.lastRead.Store(time.Now().UnixNano())
	if dialed {
		mc.calls = make(map[uint64]*call)
		mc.stopped.Add(1)
		go mc.watch()
	}
	mc.stopped.Add(2)
	go mc.writeLoop()
	go mc.readLoop()
	return mc
}

// send appends one frame, built by build, to the output buffer.
func (mc *muxConn) send(build func([]byte) []byte) error {
	mc.mu.Lock()
	if mc.closed {
		err := mc.err
		mc.mu.Unlock()
		return err
	}
	idle := len(mc.out) == 0
	mc.out = build(mc.out)
	mc.mu.Unlock()
	if idle {
		mc.kick()
	}
	return nil
}

// start registers a call and appends its request frame, built by build
// from the call id, in one step.
func (mc *muxConn) start(build func(b []byte, id uint64) ([]byte, error)) (*call, uint64, error) {
	mc.mu.Lock()
	if mc.closed {
		err := mc.err
		mc.mu.Unlock()
		return nil, 0, err
	}
	mc.nextID++
	id := mc.nextID
	idle := len(mc.out) == 0
	out, err := build(mc.out, id)
	if err != nil {
		mc.mu.Unlock()
		return nil, 0, err
	}
	mc.out = out
	c := callPool.Get().(*call)
	c.start = time.Now()
	mc.calls[id] = c
	mc.mu.Unlock()
	if idle {
		mc.kick()
	}
	return c, id, nil
}

// abandon forgets a call whose caller stopped waiting. It reports whether
// the call was still registered; if not, a result is (or will be) in its
// channel and the call must not be reused.
func (mc *muxConn) abandon(id uint64) bool {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if _, ok := mc.calls[id]; ok {
		delete(mc.calls, id)
		return true
	}
	return false
}

// releaseCall returns a call that delivered its result to the pool.
func releaseCall(c *call) { callPool.Put(c) }

func (mc *muxConn) kick() {
	select {
	case mc.wake <- struct{}{}:
	default:
	}
}

func (mc *muxConn) writeLoop() {
	defer mc.stopped.Done()
	var buf []byte
	for {
		select {
		case <-mc.wake:
		case <-mc.done:
			return
		}
		mc.mu.Lock()
		buf, mc.out = mc.out, buf[:0]
		mc.mu.Unlock()
		if len(buf) == 0 {
			continue
		}
		if err := mc.c.SetWriteDeadline(time.Now().Add(mc.timeout)); err != nil {
			mc.fail(err)
			return
		}
		if _, err := mc.c.Write(buf); err != nil {
			mc.fail(fmt.Errorf("raftmux: write: %w", err))
			return
		}
		if cap(buf) > 4<<20 {
			buf = nil // do not keep a burst's buffer for good
		}
	}
}

func (mc *muxConn) readLoop() {
	defer mc.stopped.Done()
	r := bufio.NewReaderSize(mc.c, 64<<10)
	var h [frameHeaderLen]byte
	for {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			mc.fail(fmt.Errorf("raftmux: read: %w", err))
			return
		}
		f, n, err := parseHeader(&h)
		if err != nil {
			mc.fail(err)
			return
		}
		if n > 0 {
			f.body = make([]byte, n)
			if _, err := io.ReadFull(r, f.body); err != nil {
				mc.fail(fmt.Errorf("raftmux: read: %w", err))
				return
			}
		}
		mc.lastRead.Store(time.Now().UnixNano())
		if err := mc.handle(mc, f); err != nil {
			mc.fail(err)
			return
		}
	}
}

// deliver hands a response or error frame to its call; a frame for a call
// that timed out or was abandoned is dropped.
func (mc *muxConn) deliver(f frame) error {
	if f.kind == kindRequest {
		return fmt.Errorf("%w: request on a dialed connection", errMalformed)
	}
	mc.mu.Lock()
	c, ok := mc.calls[f.id]
	delete(mc.calls, f.id)
	mc.mu.Unlock()
	if ok {
		c.ch <- callResult{f: f}
	}
	return nil
}

// watch times out calls, and closes the connection when calls wait and
// nothing has arrived for the whole timeout.
func (mc *muxConn) watch() {
	defer mc.stopped.Done()
	tick := min(max(mc.timeout/10, 10*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-mc.done:
			return
		case now := <-t.C:
			var expired []*call
			mc.mu.Lock()
			for id, c := range mc.calls {
				if now.Sub(c.start) >= mc.timeout {
					expired = append(expired, c)
					delete(mc.calls, id)
				}
			}
			mc.mu.Unlock()
			if len(expired) == 0 {
				continue
			}
			err := fmt.Errorf("%w after %v", errCallTimeout, mc.timeout)
			for _, c := range expired {
				c.ch <- callResult{err: err}
			}
			if now.Sub(time.Unix(0, mc.lastRead.Load())) >= mc.timeout {
				mc.fail(fmt.Errorf("raftmux: nothing received for %v: %w", mc.timeout, errCallTimeout))
				return
			}
		}
	}
}

// fail closes the connection with err and fails every waiting call.
func (mc *muxConn) fail(err error) {
	mc.mu.Lock()
	if mc.closed {
		mc.mu.Unlock()
		return
	}
	mc.closed = true
	mc.err = fmt.Errorf("%w: %w", errConnClosed, err)
	calls := mc.calls
	mc.calls = nil
	mc.out = nil
	close(mc.done)
	mc.mu.Unlock()
	_ = mc.c.Close()
	for _, c := range calls {
		c.ch <- callResult{err: mc.err}
	}
}

func (mc *muxConn) isClosed() bool {
	select {
	case <-mc.done:
		return true
	default:
		return false
	}
}

// close closes the connection and waits for its goroutines.
func (mc *muxConn) close() {
	mc.fail(fmt.Errorf("%w: %w", ErrClosed, net.ErrClosed))
	mc.stopped.Wait()
}
