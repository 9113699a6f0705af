package e2e

import (
	"math"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

func op(client int, in kvInput, call int64, out kvOutput, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
}

func put(k, v string) kvInput { return kvInput{kind: opPut, key: k, value: v} }
func get(k string) kvInput    { return kvInput{kind: opGet, key: k} }
func cas(k string, e uint64, v string) kvInput {
	return kvInput{kind: opCAS, key: k, expect: e, value: v}
}
func wrote(ver uint64) kvOutput          { return kvOutput{ok: true, version: ver} }
func read(v string, ver uint64) kvOutput { return kvOutput{ok: true, value: v, version: ver} }

// The register model accepts what a linearizable store may answer and
// rejects stale reads, lost compare-and-swaps and versions going back.
func TestRegisterModel(t *testing.T) {
	never := int64(math.MaxInt64)
	cases := []struct {
		name string
		h    []porcupine.Operation
		ok   bool
	}{
		{"read own write", []porcupine.Operation{
			op(0, put("a", "x"), 0, wrote(5), 10),
			op(1, get("a"), 11, read("x", 5), 12),
		}, true},
		{"stale read after a completed write", []porcupine.Operation{
			op(0, put("a", "x"), 0, wrote(5), 10),
			op(0, put("a", "y"), 11, wrote(7), 20),
			op(1, get("a"), 21, read("x", 5), 22),
		}, false},
		{"concurrent read may see either", []porcupine.Operation{
			op(0, put("a", "x"), 0, wrote(5), 10),
			op(0, put("a", "y"), 11, wrote(7), 20),
			op(1, get("a"), 12, read("x", 5), 13),
		}, true},
		{"read of absent key before any write", []porcupine.Operation{
			op(1, get("a"), 0, kvOutput{}, 1),
			op(0, put("a", "x"), 2, wrote(3), 4),
		}, true},
		{"absent after a completed write", []porcupine.Operation{
			op(0, put("a", "x"), 0, wrote(3), 1),
			op(1, get("a"), 2, kvOutput{}, 4),
		}, false},
		{"version going back", []porcupine.Operation{
			op(0, put("a", "x"), 0, wrote(9), 1),
			op(0, put("a", "y"), 2, wrote(4), 3),
		}, false},
		{"cas on the current version", []porcupine.Operation{
			op(0, put("a", "x"), 0, wrote(5), 1),
			op(1, cas("a", 5, "y"), 2, wrote(8), 3),
			op(0, get("a"), 4, read("y", 8), 5),
		}, true},
		{"two cas on one version both succeed", []porcupine.Operation{
			op(0, put("a", "x"), 0, wrote(5), 1),
			op(1, cas("a", 5, "y"), 2, wrote(8), 3),
			op(2, cas("a", 5, "z"), 2, wrote(9), 3),
		}, false},
		{"cas mismatch reports the current version", []porcupine.Operation{
			op(0, put("a", "x"), 0, wrote(5), 1),
			op(1, cas("a", 4, "y"), 2, kvOutput{version: 5}, 3),
		}, true},
		{"cas mismatch on the current version", []porcupine.Operation{
			op(0, put("a", "x"), 0, wrote(5), 1),
			op(1, cas("a", 5, "y"), 2, kvOutput{version: 5}, 3),
		}, false},
		{"unknown write may have happened", []porcupine.Operation{
			op(0, put("a", "x"), 0, kvOutput{unknown: true}, never),
			op(1, get("a"), 5, read("x", 6), 6),
		}, true},
		{"unknown write may not have happened", []porcupine.Operation{
			op(0, put("a", "x"), 0, kvOutput{unknown: true}, never),
			op(1, get("a"), 5, kvOutput{}, 6),
		}, true},
		{"unknown write seen, then unseen", []porcupine.Operation{
			op(0, put("a", "x"), 0, kvOutput{unknown: true}, never),
			op(1, get("a"), 5, read("x", 6), 6),
			op(1, get("a"), 7, kvOutput{}, 8),
		}, false},
		{"keys are independent", []porcupine.Operation{
			op(0, put("a", "x"), 0, wrote(5), 1),
			op(1, get("b"), 2, kvOutput{}, 3),
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := porcupine.CheckOperations(kvModel, c.h); got != c.ok {
				t.Fatalf("linearizable = %v, want %v", got, c.ok)
			}
		})
	}
}

// Writes of unknown outcome that nothing observed are dropped before the
// check; any that a read or an unexplained version could have come from
// are kept.
func TestDropUnobserved(t *testing.T) {
	never := int64(math.MaxInt64)
	unknown := kvOutput{unknown: true}
	h := []porcupine.Operation{
		op(0, put("a", "x"), 0, wrote(5), 1),
		op(1, put("a", "lost"), 2, unknown, never), // never read: dropped
		op(2, put("a", "seen"), 2, unknown, never), // read below: kept
		op(3, get("a"), 3, read("seen", 9), 4),
		op(4, put("b", "y"), 0, unknown, never), // b: version 7 unexplained: kept
		op(5, cas("b", 3, "z"), 5, kvOutput{version: 7}, 6),
		op(6, cas("c", 0, "w"), 0, unknown, never), // never read: dropped
	}
	got := dropUnobserved(h)
	var kept []string
	for _, o := range got {
		kept = append(kept, o.Input.(kvInput).key+":"+o.Input.(kvInput).value)
	}
	want := []string{"a:x", "a:seen", "a:", "b:y", "b:z"}
	if strings.Join(kept, " ") != strings.Join(want, " ") {
		t.Fatalf("kept %v, want %v", kept, want)
	}
	if !porcupine.CheckOperations(kvModel, got) || !porcupine.CheckOperations(kvModel, h) {
		t.Fatal("both histories should be linearizable")
	}
}
