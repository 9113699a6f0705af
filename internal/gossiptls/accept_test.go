package gossiptls

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// Beyond maxPendingHandshakes connections still in their handshake, a new
// connection is closed at once and counted as rejected; the accept loop
// goes on.
func TestHandshakeLimitClosesTheExtraConnection(t *testing.T) {
	tr := newTransport(t, newCA(t, "limit"), "a", func(c *Config) { c.Timeout = time.Minute })
	for range maxPendingHandshakes {
		silent, err := net.Dial("tcp", tr.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = silent.Close() })
	}
	extra, err := net.Dial("tcp", tr.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("connection beyond the limit: read %v, want EOF (closed by the transport)", err)
	}
	if n := tr.Stats().ConnsRejected; n != 1 {
		t.Fatalf("ConnsRejected = %d, want 1", n)
	}
}

// A listener closed under the transport, before Shutdown, is an error
// worth logging; the accept loop ends.
func TestListenerClosedBeforeShutdownIsLogged(t *testing.T) {
	logged := make(chan slog.Record, 16)
	tr := newTransport(t, newCA(t, "closed"), "a", func(c *Config) { c.Logger = slog.New(recordHandler(logged)) })
	_ = tr.ln.Close()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for {
		select {
		case r := <-logged:
			if r.Level == slog.LevelError && r.Message == "gossiptls: listener closed before Shutdown" {
				return
			}
		case <-timer.C:
			t.Fatal("no ERROR about the listener closed before Shutdown")
		}
	}
}

// recordHandler sends every record to ch, dropping them when it is full.
type recordHandler chan slog.Record

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h <- r:
	default:
	}
	return nil
}
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordHandler) WithGroup(string) slog.Handler      { return h }
