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
// logger: hclog emits JSON lines which are re-emitted as slog records.
func hclogFor(logger *slog.Logger, name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      hclog.Debug,
		JSONFormat: true,
		Output:     &hclogWriter{logger: logger},
	})
}

type hclogWriter struct{ logger *slog.Logger }

func (w *hclogWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimSpace(p), []byte("\n")) {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			w.logger.Info(string(line))
			continue
		}
		lvl := slogLevel(asString(rec["@level"]))
		msg := asString(rec["@message"])
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
// logger. memberlist prefixes lines with "[LEVEL] memberlist: ".
func stdlogFor(logger *slog.Logger) *log.Logger {
	return log.New(&stdlogWriter{logger: logger}, "", 0)
}

type stdlogWriter struct{ logger *slog.Logger }

func (w *stdlogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	lvl := slog.LevelInfo
	if strings.HasPrefix(line, "[") {
		if end := strings.Index(line, "]"); end > 0 {
			lvl = slogLevel(line[1:end])
			line = strings.TrimSpace(line[end+1:])
		}
	}
	w.logger.Log(context.Background(), lvl, line)
	return len(p), nil
}

var _ io.Writer = (*hclogWriter)(nil)
