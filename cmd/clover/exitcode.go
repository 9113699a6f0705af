package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/internal/pki"
)

// exitClass is one kind of failure and its exit code. Scripts rely on the
// codes (docs/OPERATIONS.md lists them): a code is never reused for another
// class.
type exitClass struct {
	code    int
	name    string
	meaning string
	// errs: an error is in the class when errors.Is matches any of them.
	errs []error
}

// exitOther is the code of an error in none of the classes (a node's
// internal error, for one).
const exitOther = 1

// exitClasses in the order they are tried; the first match decides. An
// outcome-unknown write also wraps ErrUnavailable, so it comes first.
var exitClasses = []exitClass{
	{2, "usage", "the command line is wrong: unknown command or flag, wrong number of arguments, a malformed flag value; cert: no CA in --certs-dir, files that exist, a file that is not a certificate",
		[]error{errUsage, client.ErrNoEndpoints, pki.ErrExists, pki.ErrNoCA, pki.ErrBadFile}},
	{3, "residency", "the node may not serve the keyspace's data; the message lists the permitted endpoints",
		[]error{client.ErrResidency}},
	{4, "not found", "the key does not exist",
		[]error{client.ErrNotFound}},
	{5, "placement violation", "placement verify found a replica outside its policy or a shard under-replicated or without a leader, or placement check found a shard whose replicas are not identical",
		[]error{errViolations, errReplicasDiffer}},
	{6, "version mismatch", "cas: the key's version is not the expected one; nothing was written",
		[]error{client.ErrVersionMismatch}},
	{7, "invalid argument", "the cluster (or cert) refuses a value: a key or value over its limit, an unknown jurisdiction or country, a bad keyspace name, replica count or role; cert: a bad name, locality, role, host or lifetime",
		[]error{client.ErrInvalidArgument}},
	{8, "unknown keyspace", "no keyspace of that name",
		[]error{client.ErrUnknownKeyspace}},
	{9, "keyspace exists", "keyspace create: a keyspace of that name exists",
		[]error{client.ErrKeyspaceExists}},
	{10, "cannot place", "too few live nodes inside the policy for its replica count; nothing was created or changed",
		[]error{client.ErrCannotPlace}},
	{11, "permission denied", "the cluster refuses this client (mutual TLS: a certificate it does not accept) or the change (keyspace create, set-policy: the personal-data guardrail)",
		[]error{client.ErrPermissionDenied}},
	{12, "outcome unknown", "a write failed after it may have reached its shard's leader: it may or may not have been applied; read the key before writing again",
		[]error{client.ErrOutcomeUnknown}},
	{13, "unavailable", "no answer within --timeout, or no node could serve: nodes unreachable, a shard without a leader, a disk full; retry later",
		[]error{client.ErrUnavailable, client.ErrResourceExhausted, client.ErrDiskFull, client.ErrConflict, context.DeadlineExceeded}},
	{14, "tampering detected", "audit: a replica's log does not extend a checkpoint you kept (truncated, rewritten), or a record, inclusion or consistency proof or checkpoint signature fails its check, or a kept stream is gone",
		[]error{errTampered}},
}

// exitCode returns the exit code for err: its class's, or exitOther.
func exitCode(err error) int {
	for _, c := range exitClasses {
		for _, e := range c.errs {
			if errors.Is(err, e) {
				return c.code
			}
		}
	}
	return exitOther
}

// exitCodesHelp is the exit-code table for clover --help.
func exitCodesHelp() string {
	var b strings.Builder
	b.WriteString("Exit codes:\n")
	line := func(code int, text string) {
		fmt.Fprintf(&b, "  %-3d", code)
		width := 0
		for _, w := range strings.Fields(text) {
			if width > 0 && width+1+len(w) > 72 {
				b.WriteString("\n     ")
				width = 0
			}
			b.WriteString(" " + w)
			width += 1 + len(w)
		}
		b.WriteString("\n")
	}
	line(0, "success")
	line(exitOther, "an error outside the classes below (a node's internal error)")
	for _, c := range exitClasses {
		line(c.code, c.name+": "+c.meaning)
	}
	return b.String()
}

// message is err's text for standard error, after the program name. The
// client library begins its messages, and those it wraps, with "clover: ",
// which the program name already says once.
func message(err error) string {
	return strings.ReplaceAll(strings.TrimPrefix(err.Error(), "clover: "), ": clover: ", ": ")
}

// writeErr is the error of a failed write. A write still in flight when
// --timeout ran out may or may not have been applied: it is reported as
// outcome unknown, not as unavailable.
func writeErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, client.ErrOutcomeUnknown) {
		return fmt.Errorf("%w: %w", client.ErrOutcomeUnknown, err)
	}
	return err
}
