package e2e

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// binaries are the paths of the programs TestMain built.
var binaries struct {
	cloverd string
	clover  string
	bench   string
	// commit is what the binaries were built from (git rev-parse HEAD), ""
	// outside a git checkout.
	commit string
}

func TestMain(m *testing.M) {
	flag.Parse()
	// The clusters these tests start run in insecure mode unless a test
	// says otherwise: every cloverd, clover and clover-bench they run
	// reads it (a secure test's processes get CLOVER_INSECURE=false).
	os.Setenv("CLOVER_INSECURE", "true")
	if testing.Short() {
		os.Exit(m.Run())
	}
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "clover-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := build(dir); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	binaries.cloverd = filepath.Join(dir, "cloverd")
	binaries.clover = filepath.Join(dir, "clover")
	binaries.bench = filepath.Join(dir, "clover-bench")
	return m.Run()
}

// build compiles cloverd, clover and clover-bench, pure Go, into dir,
// giving them the commit as make build does.
func build(dir string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	var ldflags []string
	if out, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output(); err == nil {
		binaries.commit = strings.TrimSpace(string(out))
		ldflags = []string{"-ldflags", "-X github.com/clover-kv/clover/internal/buildinfo.revision=" + binaries.commit}
	}
	args := append(append([]string{"build"}, ldflags...), "-o", dir+string(filepath.Separator), "./cmd/cloverd", "./cmd/clover", "./cmd/clover-bench")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build in %s: %v\n%s", root, err, out.String())
	}
	return nil
}

// moduleRoot is the nearest directory holding go.mod above this file (or,
// when the file's path is not known, above the working directory).
func moduleRoot() (string, error) {
	start, _ := os.Getwd()
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		start = filepath.Dir(file)
	}
	for dir := start; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", errors.New("no go.mod above " + start)
		}
	}
}

// needBinaries skips the test under -short (TestMain built nothing then).
func needBinaries(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	if binaries.cloverd == "" {
		t.Fatal("cloverd was not built")
	}
}
