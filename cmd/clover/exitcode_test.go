package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/internal/pki"
)

// Each class of error has its own exit code, decided with errors.Is on the
// client library's sentinels however the error is wrapped.
func TestExitCode(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{fmt.Errorf("%w: bad", errUsage), 2},
		{client.ErrNoEndpoints, 2},
		{fmt.Errorf("%w: certs/ca.crt", pki.ErrExists), 2},
		{fmt.Errorf("%w: certs has no ca.crt", pki.ErrNoCA), 2},
		{fmt.Errorf("%w: x.crt holds no PEM CERTIFICATE", pki.ErrBadFile), 2},
		{fmt.Errorf("get: %w", client.ErrResidency), 3},
		{fmt.Errorf("get: %w", client.ErrNotFound), 4},
		{fmt.Errorf("%w: 2", errViolations), 5},
		{fmt.Errorf("%w: 1 of 4 shards", errReplicasDiffer), 5},
		{client.ErrVersionMismatch, 6},
		{fmt.Errorf("%w: bad", client.ErrInvalidArgument), 7},
		{client.ErrUnknownKeyspace, 8},
		{client.ErrKeyspaceExists, 9},
		{client.ErrCannotPlace, 10},
		{client.ErrPermissionDenied, 11},
		{fmt.Errorf("%w: %w", client.ErrOutcomeUnknown, client.ErrUnavailable), 12},
		{writeErr(context.DeadlineExceeded), 12},
		{client.ErrUnavailable, 13},
		{client.ErrDiskFull, 13},
		{fmt.Errorf("reach cluster: %w", context.DeadlineExceeded), 13},
		{fmt.Errorf("%w: 2 problems found", errTampered), 14},
		{client.ErrInternal, 1},
		{errors.New("anything else"), 1},
	}
	for _, tc := range cases {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	seen := map[int]string{0: "success", exitOther: "other"}
	for _, c := range exitClasses {
		if prev, dup := seen[c.code]; dup {
			t.Errorf("exit code %d is both %s and %s", c.code, prev, c.name)
		}
		seen[c.code] = c.name
	}
}

// docs/OPERATIONS.md lists exactly the codes and classes the CLI uses.
func TestExitCodesDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## CLI exit codes\n")
	if !ok {
		t.Fatal(`docs/OPERATIONS.md has no "## CLI exit codes" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| (\\d+) \\| ([^|]+?) \\|")
	got := map[int]string{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		code, _ := strconv.Atoi(m[1])
		got[code] = m[2]
	}
	want := map[int]string{0: "success", exitOther: "other"}
	for _, c := range exitClasses {
		want[c.code] = c.name
	}
	for code, name := range want {
		if got[code] != name {
			t.Errorf("docs/OPERATIONS.md: exit code %d is %q, want %q", code, got[code], name)
		}
	}
	if len(got) != len(want) {
		t.Errorf("docs/OPERATIONS.md lists codes %v, want %v", got, want)
	}
}

// The message after "clover: " names the program once: the client
// library's own "clover: " prefixes are dropped, at the start and where it
// wraps one of its errors in another.
func TestMessage(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{client.ErrNotFound, "key not found"},
		{fmt.Errorf("clover: reach cluster at [a]: %w", fmt.Errorf("%w: no endpoint answered", client.ErrUnavailable)),
			"reach cluster at [a]: unavailable: no endpoint answered"},
		{fmt.Errorf("%w: --limit 0: want at least 1", errUsage), "usage: --limit 0: want at least 1"},
	}
	for _, tc := range cases {
		if got := message(tc.err); got != tc.want {
			t.Errorf("message(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
