package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/clover-kv/clover/bench"
)

// ui shows a phase's progress on stderr: status lines, and a progress bar
// when stderr is a terminal.
type ui struct {
	w   io.Writer
	bar *progressbar.ProgressBar
	// value picks what the bar counts: operations or elapsed seconds.
	value func(bench.Progress) int64
}

func newUI(w io.Writer, phase bench.Phase, cfg bench.Config) *ui {
	u := &ui{w: w}
	if !isTerminal(w) {
		return u
	}
	var max int64
	switch {
	case phase == bench.PhaseLoad && cfg.MaxExecutionTime == 0:
		max = cfg.InsertCount
		u.value = func(p bench.Progress) int64 { return p.Done }
	case phase == bench.PhaseRun && cfg.MaxExecutionTime == 0:
		max = cfg.OperationCount
		u.value = func(p bench.Progress) int64 { return p.Measured }
	default:
		max = int64((cfg.WarmupTime + cfg.MaxExecutionTime) / time.Second)
		u.value = func(p bench.Progress) int64 { return int64(p.Elapsed / time.Second) }
	}
	u.bar = progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(phase.String()),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionThrottle(200*time.Millisecond))
	return u
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (u *ui) status(s bench.Status) {
	if u.bar != nil {
		_ = u.bar.Clear()
	}
	fmt.Fprintln(u.w, s)
}

func (u *ui) progress(p bench.Progress) {
	if u.bar != nil {
		_ = u.bar.Set64(min(u.value(p), u.bar.GetMax64()))
	}
}

func (u *ui) finish() {
	if u.bar != nil {
		_ = u.bar.Clear()
	}
}
