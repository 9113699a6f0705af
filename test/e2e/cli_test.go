package e2e

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clover-kv/clover/client"
)

// runCLI runs the clover CLI and returns its exit code, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runBinary(t, binaries.clover, args...)
}

// runBinary runs one of the built programs.
func runBinary(t *testing.T, path string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(cmd.Environ(), "CLOVER_ENDPOINTS=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("clover %v still running after %v", args, readyTimeout)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("run clover: %v", err)
	return 0, "", ""
}

// The CLI reports a residency refusal by the US node with exit code 3 and
// the permitted endpoints, and a policy that cannot be placed with an
// error; neither leaks the key or creates anything.
func TestResidencyRefusedThroughCLI(t *testing.T) {
	c := startCluster(t, demoNodes())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := c.client(t)
	if _, err := cl.CreateKeyspace(ctx, "users", usersShards, eea); err != nil {
		t.Fatalf("create users: %v", err)
	}
	c.waitKeyspaceKnown(t, "users", c.ids()...)
	key, value := "user/"+randomHex(t), "value-"+randomHex(t)
	if _, err := cl.Put(ctx, "users", []byte(key), []byte(value)); err != nil {
		t.Fatalf("put: %v", err)
	}
	eeaEndpoints := c.endpoints("ie-1", "ie-2", "no-1")
	us := c.node("us-1").grpc

	// An EEA node serves the key through the same command.
	code, stdout, stderr := runCLI(t, "--endpoints", eeaEndpoints[0], "--direct", "kv", "get", "users", key)
	if code != 0 || !strings.Contains(stdout, value) {
		t.Fatalf("get through ie-1: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	code, stdout, stderr = runCLI(t, "--endpoints", us, "--direct", "kv", "get", "users", key)
	if code != 3 {
		t.Errorf("get through the US node: exit %d, want 3; stderr %q", code, stderr)
	}
	if !strings.Contains(stderr, "residency") || !strings.Contains(stderr, "permitted endpoints") {
		t.Errorf("stderr does not explain the residency refusal: %q", stderr)
	}
	for _, ep := range eeaEndpoints {
		if !strings.Contains(stderr, ep) {
			t.Errorf("stderr does not list permitted endpoint %s: %q", ep, stderr)
		}
	}
	if strings.Contains(stderr, us) {
		t.Errorf("stderr lists the US node %s as permitted: %q", us, stderr)
	}
	if strings.Contains(stdout+stderr, key) || strings.Contains(stdout+stderr, value) {
		t.Errorf("the refusal shows the key or its value: stdout %q, stderr %q", stdout, stderr)
	}

	code, _, stderr = runCLI(t, "--endpoints", strings.Join(c.endpoints(), ","),
		"keyspace", "create", "x", "--residency", "EEA", "--replicas", "5")
	if code != 10 {
		t.Fatalf("creating a keyspace of 5 EEA replicas on 3 EEA nodes: exit %d, want 10; stderr %q", code, stderr)
	}
	if !strings.Contains(stderr, "cannot place") || !strings.Contains(stderr, `"x"`) {
		t.Errorf("stderr does not say the policy cannot be placed: %q", stderr)
	}
	list, err := cl.Keyspaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(list, func(k client.Keyspace) bool { return k.Name == "x" }) {
		t.Fatal("keyspace x exists after the refusal")
	}
}

// Errors name the program once, each class has its exit code, and the
// JSON scripts read has its documented names.
func TestCLIErrorsAndJSON(t *testing.T) {
	c := startCluster(t, demoNodes()[:3])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.client(t).CreateKeyspace(ctx, "users", usersShards, eea); err != nil {
		t.Fatalf("create users: %v", err)
	}
	c.waitKeyspaceKnown(t, "users", c.ids()...)
	ep := strings.Join(c.endpoints(), ",")
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"kv", "get", "users", "missing"}, 4, "clover: key not found\n"},
		{[]string{"kv", "get", "nope", "k"}, 8, ""},
		{[]string{"kv", "cas", "users", "cas/1", "7", "v"}, 6, ""},
		{[]string{"keyspace", "create", "users", "--residency", "EEA"}, 9, ""},
		{[]string{"keyspace", "create", "x", "--residency", "XX"}, 7, ""},
		{[]string{"kv", "frobnicate"}, 2, ""},
	} {
		code, _, stderr := runCLI(t, append([]string{"--endpoints", ep}, tc.args...)...)
		if code != tc.code || strings.Count(stderr, "clover:") != 1 || (tc.stderr != "" && stderr != tc.stderr) {
			t.Errorf("clover %v: exit %d, stderr %q; want exit %d, one \"clover:\"", tc.args, code, stderr, tc.code)
		}
	}
	code, stdout, stderr := runCLI(t, "--endpoints", ep, "cluster", "status", "-w", "json")
	if code != 0 || strings.Count(stdout, `"live": true`) != 3 || !strings.Contains(stdout, `"shardsHeld"`) || strings.Contains(stdout, "null") {
		t.Errorf("cluster status -w json: exit %d, stderr %q, stdout\n%s", code, stderr, stdout)
	}
}

// Every binary prints its version and the commit it was built from.
func TestVersionOfEachBinary(t *testing.T) {
	needBinaries(t)
	for name, path := range map[string]string{"clover": binaries.clover, "cloverd": binaries.cloverd, "clover-bench": binaries.bench} {
		code, stdout, stderr := runBinary(t, path, "--version")
		if code != 0 || !strings.HasPrefix(stdout, name+" devel (commit "+binaries.commit) || !strings.Contains(stdout, runtime.Version()) {
			t.Errorf("%s --version: exit %d, stdout %q, stderr %q; want the commit %s and %s", name, code, stdout, stderr, binaries.commit, runtime.Version())
		}
	}
}
