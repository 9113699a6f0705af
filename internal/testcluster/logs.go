package testcluster

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/clover-kv/clover/server"
)

// LogRecord is one log record of a node, its attributes flattened to text.
type LogRecord struct {
	Node  string
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

// String renders the record as one line for failure messages.
func (r LogRecord) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %q", r.Node, r.Level, r.Msg)
	for k, v := range r.Attrs {
		fmt.Fprintf(&b, " %s=%s", k, v)
	}
	return b.String()
}

// Logs records every log record of the nodes it is given to (see
// CaptureLogs), at every level, and still passes them to the logger the
// node had (so CLOVER_TEST_LOG keeps working). Safe for concurrent use.
type Logs struct {
	mu      sync.Mutex
	recs    []LogRecord
	changed chan struct{} // closed and replaced on every record
}

// NewLogs returns an empty record.
func NewLogs() *Logs { return &Logs{changed: make(chan struct{})} }

// CaptureLogs records every node's logs into l.
func CaptureLogs(l *Logs) Option {
	return func(cfg *server.Config) {
		next := cfg.Logger.Handler()
		cfg.Logger = slog.New(&logHandler{logs: l, node: cfg.NodeID, next: next})
	}
}

// Mark is a position in the record: Since returns what came after it.
type Mark int

// Mark returns the current end of the record.
func (l *Logs) Mark() Mark {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Mark(len(l.recs))
}

// Since returns the records after m that match.
func (l *Logs) Since(m Mark, match func(LogRecord) bool) []LogRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []LogRecord
	for _, r := range l.recs[m:] {
		if match(r) {
			out = append(out, r)
		}
	}
	return out
}

// Wait returns the first record after m that matches, waiting for it until
// timeout.
func (l *Logs) Wait(m Mark, timeout time.Duration, match func(LogRecord) bool) (LogRecord, bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for i := int(m); ; {
		l.mu.Lock()
		recs, changed := l.recs, l.changed
		l.mu.Unlock()
		for ; i < len(recs); i++ {
			if match(recs[i]) {
				return recs[i], true
			}
		}
		select {
		case <-changed:
		case <-timer.C:
			return LogRecord{}, false
		}
	}
}

// AtLeast matches the records of level lvl or above.
func AtLeast(lvl slog.Level) func(LogRecord) bool {
	return func(r LogRecord) bool { return r.Level >= lvl }
}

func (l *Logs) add(r LogRecord) {
	l.mu.Lock()
	l.recs = append(l.recs, r)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// logHandler records every record, then hands it to next.
type logHandler struct {
	logs   *Logs
	node   string
	attrs  []slog.Attr
	groups string
	next   slog.Handler
}

func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	rec := LogRecord{Node: h.node, Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.Attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[h.groups+a.Key] = a.Value.String()
		return true
	})
	h.logs.add(rec)
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(c.attrs[:len(c.attrs):len(c.attrs)], prefixed(h.groups, as)...)
	c.next = h.next.WithAttrs(as)
	return &c
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.groups += name + "."
	c.next = h.next.WithGroup(name)
	return &c
}

func prefixed(prefix string, as []slog.Attr) []slog.Attr {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = slog.Attr{Key: prefix + a.Key, Value: a.Value}
	}
	return out
}
