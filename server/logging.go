package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// hclogFor returns an hclog.Logger for hashicorp/raft that writes through
// logger: hclog emits JSON lines which are re-emitted as slog records, at
// the level d.lower gives them (failures to reach a peer that announced
// its leave, and this node's own shutdown, are not WARN or ERROR).
func hclogFor(logger *slog.Logger, name string, d *departures) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      hclog.Debug,
		JSONFormat: true,
		Output:     &hclogWriter{logger: logger, d: d},
	})
}

// routineRaftLines are messages hashicorp/raft logs above their weight,
// with the level they are logged at instead. "peer has newer term" is how
// a leader's replication learns that another replica took over, which
// happens at every leadership transfer (a hand-over, the placement
// controller moving a leader): the old leader steps down as Raft intends.
var routineRaftLines = map[string]slog.Level{
	"peer has newer term, stopping replication": slog.LevelInfo,
}

type hclogWriter struct {
	logger *slog.Logger
	d      *departures
}

func (w *hclogWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimSpace(p), []byte("\n")) {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			w.logger.Info(string(line))
			continue
		}
		msg := asString(rec["@message"])
		lvl := slogLevel(asString(rec["@level"]))
		if routine, ok := routineRaftLines[msg]; ok {
			lvl = min(lvl, routine)
		}
		lvl = w.d.lower(lvl, rec)
		attrs := make([]slog.Attr, 0, len(rec))
		for k, v := range rec {
			if strings.HasPrefix(k, "@") {
				if k == "@module" {
					attrs = append(attrs, slog.Any("module", v))
				}
				continue
			}
			attrs = append(attrs, slog.Any(k, v))
		}
		w.logger.LogAttrs(context.Background(), lvl, msg, attrs...)
	}
	return len(p), nil
}

func asString(v any) string { s, _ := v.(string); return s }

func slogLevel(s string) slog.Level {
	switch strings.ToLower(strings.Trim(s, "[] ")) {
	case "trace", "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error", "err":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// stdlogFor returns a *log.Logger (memberlist's logger) writing through
// logger. memberlist prefixes lines with "[LEVEL] memberlist: "; d.lowerLine
// lowers the lines about a peer that announced its leave.
func stdlogFor(logger *slog.Logger, d *departures) *log.Logger {
	return log.New(&stdlogWriter{logger: logger, d: d}, "", 0)
}

type stdlogWriter struct {
	logger *slog.Logger
	d      *departures
}

func (w *stdlogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	lvl := slog.LevelInfo
	if strings.HasPrefix(line, "[") {
		if end := strings.Index(line, "]"); end > 0 {
			lvl = slogLevel(line[1:end])
			line = strings.TrimSpace(line[end+1:])
			lvl = w.d.lowerLine(lvl, line)
		}
	}
	w.logger.Log(context.Background(), lvl, line)
	return len(p), nil
}

var _ io.Writer = (*hclogWriter)(nil)
