package e2e

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/clover-kv/clover/client"
)

// The register model below checks histories of get, put and
// compare-and-swap on a few keys with Porcupine. A key's state is its value
// and version (the Raft index of its last write; 0 = absent). Values are
// unique per write, so a read names the write it saw.

type opKind uint8

const (
	opGet opKind = iota
	opPut
	opCAS
)

type kvInput struct {
	kind   opKind
	key    string
	value  string // put, cas
	expect uint64 // cas
}

type kvOutput struct {
	// unknown: the call failed in a way that leaves its outcome open (a
	// timeout, an unavailable shard). Such an operation gets an infinite
	// return time: it may take effect at any point after its call, or
	// never (placed after everything else).
	unknown bool
	ok      bool   // get: found; cas: swapped; put: always
	value   string // get
	version uint64 // get, put, cas (success: new version; mismatch: current)
}

type kvState struct {
	value   string
	version uint64
	known   bool // false after a write of unknown outcome: version not yet seen
}

func (s kvState) String() string {
	if !s.known {
		return fmt.Sprintf("%q@?", s.value)
	}
	if s.version == 0 {
		return "absent"
	}
	return fmt.Sprintf("%q@%d", s.value, s.version)
}

var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(kvInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() interface{} { return kvState{known: true} },
	Step: func(st, in, out interface{}) (bool, interface{}) {
		return kvStep(st.(kvState), in.(kvInput), out.(kvOutput))
	},
	DescribeOperation: func(in, out interface{}) string {
		i, o := in.(kvInput), out.(kvOutput)
		res := fmt.Sprintf("-> @%d", o.version)
		if o.unknown {
			res = "-> ?"
		}
		switch i.kind {
		case opGet:
			if o.ok {
				return fmt.Sprintf("get(%s) -> %q@%d", i.key, o.value, o.version)
			}
			return fmt.Sprintf("get(%s) -> absent", i.key)
		case opPut:
			return fmt.Sprintf("put(%s, %q) %s", i.key, i.value, res)
		default:
			if !o.unknown && !o.ok {
				res = fmt.Sprintf("-> mismatch, now @%d", o.version)
			}
			return fmt.Sprintf("cas(%s, @%d, %q) %s", i.key, i.expect, i.value, res)
		}
	},
	DescribeState: func(st interface{}) string { return st.(kvState).String() },
}

func kvStep(s kvState, in kvInput, out kvOutput) (bool, kvState) {
	switch in.kind {
	case opGet:
		if !out.ok {
			return s.value == "" && (!s.known || s.version == 0), kvState{known: true}
		}
		if out.value != s.value || (s.known && out.version != s.version) {
			return false, s
		}
		return true, kvState{value: s.value, version: out.version, known: true}
	case opPut:
		if out.unknown {
			return true, kvState{value: in.value}
		}
		if s.known && out.version <= s.version {
			return false, s
		}
		return true, kvState{value: in.value, version: out.version, known: true}
	default: // cas
		matches := !s.known || s.version == in.expect
		switch {
		case out.unknown:
			if !matches {
				return true, s // it cannot have applied
			}
			return true, kvState{value: in.value}
		case out.ok:
			return matches && out.version > in.expect, kvState{value: in.value, version: out.version, known: true}
		default: // mismatch, with the current version
			if s.known {
				return s.version != in.expect && s.version == out.version, s
			}
			return out.version != in.expect, kvState{value: s.value, version: out.version, known: true}
		}
	}
}

// recorder collects a concurrent history. Workers take a fresh client ID
// after an operation of unknown outcome, so that every client's operations
// stay sequential for Porcupine's visualisation.
type recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

func newRecorder() *recorder { return &recorder{start: time.Now()} }

func (r *recorder) now() int64 { return int64(time.Since(r.start)) }

func (r *recorder) add(clientID int, in kvInput, call int64, out kvOutput) {
	ret := r.now()
	if out.unknown {
		ret = math.MaxInt64
	}
	r.mu.Lock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: clientID, Input: in, Call: call, Output: out, Return: ret})
	r.mu.Unlock()
}

func (r *recorder) history() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]porcupine.Operation(nil), r.ops...)
}

// definite reports whether err says the write certainly did not happen
// or happened with a known result.
func definite(err error) bool {
	return errors.Is(err, client.ErrVersionMismatch) || errors.Is(err, client.ErrInvalidArgument) ||
		errors.Is(err, client.ErrUnknownKeyspace) || errors.Is(err, client.ErrResidency)
}

// doOp runs one operation through cl and returns its output; record is
// false when the operation belongs in no history (a failed read, a
// write refused before it was proposed).
func doOp(ctx context.Context, cl *client.Client, ks string, in kvInput) (out kvOutput, record bool) {
	key := []byte(in.key)
	switch in.kind {
	case opGet:
		kv, err := cl.Get(ctx, ks, key)
		switch {
		case errors.Is(err, client.ErrNotFound):
			return kvOutput{}, true
		case err != nil:
			return kvOutput{}, false
		}
		return kvOutput{ok: true, value: string(kv.Value), version: kv.Version}, true
	case opPut:
		v, err := cl.Put(ctx, ks, key, []byte(in.value))
		switch {
		case err == nil:
			return kvOutput{ok: true, version: v}, true
		case definite(err):
			return kvOutput{}, false
		}
		return kvOutput{unknown: true}, true
	default:
		v, err := cl.CompareAndSwap(ctx, ks, key, in.expect, []byte(in.value))
		var ce *client.Error
		switch {
		case err == nil:
			return kvOutput{ok: true, version: v}, true
		case errors.Is(err, client.ErrVersionMismatch) && errors.As(err, &ce):
			return kvOutput{version: ce.CurrentVersion}, true
		case definite(err):
			return kvOutput{}, false
		}
		return kvOutput{unknown: true}, true
	}
}

// dropUnobserved removes writes of unknown outcome that nothing observed:
// no read returned their value, and no version seen without a value on their
// key (a compare-and-swap's expected or reported version) is unexplained by
// the writes of known outcome and the reads. Such a write can always be placed
// after every other operation (its return time is open), where it changes
// nothing anyone saw, so the history is linearizable with it exactly when it
// is without it; left in, each one multiplies the orders Porcupine tries.
func dropUnobserved(h []porcupine.Operation) []porcupine.Operation {
	readValues := map[string]map[string]bool{}    // key -> values read
	knownVersions := map[string]map[uint64]bool{} // key -> versions written with known outcome
	seenVersions := map[string]map[uint64]bool{}  // key -> versions observed
	add := func(m map[string]map[uint64]bool, k string, v uint64) {
		if m[k] == nil {
			m[k] = map[uint64]bool{}
		}
		m[k][v] = true
	}
	for _, op := range h {
		in, out := op.Input.(kvInput), op.Output.(kvOutput)
		switch {
		case out.unknown:
		case in.kind == opGet:
			if out.ok {
				if readValues[in.key] == nil {
					readValues[in.key] = map[string]bool{}
				}
				readValues[in.key][out.value] = true
				add(knownVersions, in.key, out.version) // tied to the value read, whose write is kept
			}
		case in.kind == opCAS && !out.ok:
			add(seenVersions, in.key, out.version)
		default:
			add(knownVersions, in.key, out.version)
		}
		if in.kind == opCAS {
			add(seenVersions, in.key, in.expect)
		}
	}
	unexplained := map[string]bool{}
	for k, vs := range seenVersions {
		for v := range vs {
			if v != 0 && !knownVersions[k][v] {
				unexplained[k] = true
			}
		}
	}
	out := h[:0:0]
	for _, op := range h {
		in, o := op.Input.(kvInput), op.Output.(kvOutput)
		if o.unknown && in.kind != opGet && !readValues[in.key][in.value] && !unexplained[in.key] {
			continue
		}
		out = append(out, op)
	}
	return out
}
