package testwait

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Until returns as soon as a condition another goroutine makes true holds,
// and false when it never does.
func TestUntil(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			n.Add(1)
		}
	}()
	if !Until(10*time.Second, func() bool { return n.Load() == 3 }) {
		t.Fatal("a condition that came true was not seen")
	}
	calls := 0
	if Until(3*Interval, func() bool { calls++; return false }) {
		t.Fatal("a condition that never holds was reported held")
	}
	if calls < 2 {
		t.Fatalf("cond called %d times, want it polled", calls)
	}
}

// No test of the module waits by sleeping: each waits on an event, polls
// a condition through For, or, where a duration is the point (a fault held
// for a while), selects on a timer.
func TestNoTestSleeps(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	sleep := []byte("time." + "Sleep(")
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range bytes.Split(b, []byte("\n")) {
			if bytes.Contains(line, sleep) {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s:%d sleeps: %s", rel, i+1, bytes.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
