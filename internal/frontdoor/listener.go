package frontdoor

import (
	"container/list"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultLogInterval is Config.LogInterval when it is zero.
const DefaultLogInterval = 10 * time.Second

// Config configures a Listener. The zero value admits every connection and
// logs nothing.
type Config struct {
	// Name names the listener in logs, e.g. "grpc", "raft", "gossip".
	Name string
	// MaxConns bounds the connections open at once; 0 means no bound.
	MaxConns int
	// FirstByteTimeout closes a connection from which the server has read
	// nothing this long after it was accepted; 0 means no bound.
	FirstByteTimeout time.Duration
	// TCPUserTimeout, if positive, is set as TCP_USER_TIMEOUT on every
	// accepted TCP connection (Linux; elsewhere it does nothing): data
	// unacknowledged for this long fails the connection. Servers that set
	// it themselves (gRPC with keepalive) only do so on a *net.TCPConn,
	// which a Listener's connections are not.
	TCPUserTimeout time.Duration
	// LogInterval: turned-away connections are logged at most once per
	// interval, with counts. Default DefaultLogInterval.
	LogInterval time.Duration
	// Logger receives those logs. Default: discarded.
	Logger *slog.Logger
}

// Stats counts what a Listener did since Wrap.
type Stats struct {
	// Open is the number of connections open now.
	Open int
	// Accepted counts connections handed to the server.
	Accepted uint64
	// Refused counts connections closed at once: the listener was full and
	// no connection was pending.
	Refused uint64
	// Evicted counts pending connections closed to make room for a newer
	// one.
	Evicted uint64
	// TimedOut counts connections closed after FirstByteTimeout without
	// having sent anything.
	TimedOut uint64
}

// Listener is a net.Listener that bounds its open connections; see the
// package documentation for the contract. Create it with Wrap.
type Listener struct {
	ln     net.Listener
	cfg    Config
	logger *slog.Logger

	mu      sync.Mutex
	open    int
	pending list.List // *conn, oldest first: accepted, nothing read yet

	accepted, refused, evicted, timedOut atomic.Uint64
	lastLog                              atomic.Int64 // UnixNano of the last log line
}

var _ net.Listener = (*Listener)(nil)

// Wrap returns ln bounded by cfg. Closing the Listener closes ln; the
// connections it accepted stay open.
func Wrap(ln net.Listener, cfg Config) *Listener {
	if cfg.LogInterval <= 0 {
		cfg.LogInterval = DefaultLogInterval
	}
	l := &Listener{ln: ln, cfg: cfg, logger: cfg.Logger}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	return l
}

// Accept returns the next connection the bound admits. Connections it
// turns away are closed without blocking; errors are ln's.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		raw, err := l.ln.Accept()
		if err != nil {
			return nil, err
		}
		if c := l.admit(raw); c != nil {
			return c, nil
		}
	}
}

// Close closes the underlying listener.
func (l *Listener) Close() error { return l.ln.Close() }

// Addr is the underlying listener's address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Stats returns the listener's counters.
func (l *Listener) Stats() Stats {
	l.mu.Lock()
	open := l.open
	l.mu.Unlock()
	return Stats{Open: open, Accepted: l.accepted.Load(), Refused: l.refused.Load(),
		Evicted: l.evicted.Load(), TimedOut: l.timedOut.Load()}
}

// admit counts raw in, evicting the oldest pending connection when the
// listener is full, or closes it and returns nil when nothing is pending.
func (l *Listener) admit(raw net.Conn) *conn {
	c := &conn{Conn: raw, l: l}
	var victim *conn
	l.mu.Lock()
	if l.cfg.MaxConns > 0 && l.open >= l.cfg.MaxConns {
		front := l.pending.Front()
		if front == nil {
			l.mu.Unlock()
			l.refused.Add(1) // counted before the close, so a peer that sees the close sees the count
			_ = raw.Close()
			l.noteTurnedAway()
			return nil
		}
		victim = front.Value.(*conn)
		l.dropLocked(victim)
	}
	l.open++
	c.counted = true
	c.elem = l.pending.PushBack(c)
	if l.cfg.FirstByteTimeout > 0 {
		c.timer = time.AfterFunc(l.cfg.FirstByteTimeout, func() { l.expire(c) })
	}
	l.mu.Unlock()
	if victim != nil {
		victim.stopTimer()
		l.evicted.Add(1)
		_ = victim.Conn.Close()
		l.noteTurnedAway()
	}
	if l.cfg.TCPUserTimeout > 0 {
		if tc, ok := raw.(*net.TCPConn); ok {
			_ = setTCPUserTimeout(tc, l.cfg.TCPUserTimeout)
		}
	}
	l.accepted.Add(1)
	return c
}

// dropLocked stops counting c; l.mu is held.
func (l *Listener) dropLocked(c *conn) {
	if c.elem != nil {
		l.pending.Remove(c.elem)
		c.elem = nil
	}
	if c.counted {
		c.counted = false
		l.open--
	}
}

// expire closes c if it is still pending when its first-byte time is up.
func (l *Listener) expire(c *conn) {
	l.mu.Lock()
	if c.elem == nil {
		l.mu.Unlock()
		return
	}
	l.dropLocked(c)
	l.mu.Unlock()
	l.timedOut.Add(1)
	_ = c.Conn.Close()
	l.noteTurnedAway()
}

// noteTurnedAway logs the counters unless a line went out less than
// LogInterval ago.
func (l *Listener) noteTurnedAway() {
	now := time.Now().UnixNano()
	last := l.lastLog.Load()
	if last != 0 && now-last < int64(l.cfg.LogInterval) {
		return
	}
	if !l.lastLog.CompareAndSwap(last, now) {
		return
	}
	s := l.Stats()
	l.logger.Warn("frontdoor: connections turned away", "listener", l.cfg.Name, "addr", l.ln.Addr().String(),
		"max_conns", l.cfg.MaxConns, "open", s.Open, "refused_total", s.Refused, "evicted_total", s.Evicted,
		"timed_out_total", s.TimedOut)
}

// conn is an accepted connection; it leaves the pending list at its first
// read that returns data, and the count at its Close.
type conn struct {
	net.Conn
	l     *Listener
	heard atomic.Bool
	timer *time.Timer // set in admit, before the conn is handed out

	// Guarded by l.mu.
	elem    *list.Element // non-nil while pending
	counted bool          // counts towards l.open
}

func (c *conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.heard.Load() {
		c.heard.Store(true)
		c.l.mu.Lock()
		if c.elem != nil {
			c.l.pending.Remove(c.elem)
			c.elem = nil
		}
		c.l.mu.Unlock()
		c.stopTimer()
	}
	return n, err
}

// Close releases the connection's place and closes it.
func (c *conn) Close() error {
	c.l.mu.Lock()
	c.l.dropLocked(c)
	c.l.mu.Unlock()
	c.stopTimer()
	return c.Conn.Close()
}

// NetConn returns the accepted connection itself.
func (c *conn) NetConn() net.Conn { return c.Conn }

func (c *conn) stopTimer() {
	if c.timer != nil {
		c.timer.Stop()
	}
}
