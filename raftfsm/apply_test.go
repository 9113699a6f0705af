package raftfsm

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/hashicorp/raft"
)

func TestApplyConditions(t *testing.T) {
	db, _ := openMem(t, nil)
	f := mustFSM(t, db, 1, Options{})

	check := func(l *raft.Log, want ...string) {
		t.Helper()
		rs := applyOne(t, f, l)
		var got []string
		for _, r := range rs {
			got = append(got, resultString(r))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("entry %d: results %v, want %v", l.Index, got, want)
		}
		if f.AppliedIndex() != l.Index {
			t.Fatalf("applied %d, want %d", f.AppliedIndex(), l.Index)
		}
	}
	check(entry(5, cmd(putIf("k", "v1", 0))), "ok@5")                 // create
	check(entry(6, cmd(putIf("k", "v2", 0))), "mismatch(op=0,cur=5)") // exists
	check(entry(7, cmd(putIf("k", "v3", 4))), "mismatch(op=0,cur=5)") // stale
	check(entry(8, cmd(putIf("k", "v4", 5))), "ok@8")                 // CAS
	check(entry(9, cmd(delIf("k", 5))), "mismatch(op=0,cur=8)")       // stale delete
	check(entry(10, cmd(put("x", "1"), delIf("k", 8))), "ok@10")      // conditional delete
	check(entry(11, cmd(delIf("k", 8))), "mismatch(op=0,cur=0)")      // gone
	check(entry(12, cmd(put("k", "again"))), "ok@12")                 // blind put
	check(entry(13, cmd(del("nothing"))), "ok@13")                    // blind delete of a missing key
	if v, ver, found := mustGet(t, f, "k"); !found || v != "again" || ver != 12 {
		t.Fatalf("k = %q@%d found=%v", v, ver, found)
	}
	if v, ver, found := mustGet(t, f, "x"); !found || v != "1" || ver != 10 {
		t.Fatalf("x = %q@%d found=%v", v, ver, found)
	}
	if _, _, found := mustGet(t, f, "nothing"); found {
		t.Fatal("deleted key found")
	}
}

func TestApplyCommandIsAtomic(t *testing.T) {
	db, _ := openMem(t, nil)
	f := mustFSM(t, db, 1, Options{})
	applyOne(t, f, entry(1, cmd(put("a", "old"))))
	rs := applyOne(t, f, entry(2, cmd(put("a", "new"), del("b"), putIf("c", "v", 3)), cmd(put("d", "ok"))))
	var mm *MismatchError
	if !errors.As(rs[0].Err, &mm) || !errors.Is(rs[0].Err, ErrVersionMismatch) || mm.OpIndex != 2 || mm.Current != 0 {
		t.Fatalf("result 0 = %v", rs[0])
	}
	if rs[1].Err != nil || rs[1].Version != 2 {
		t.Fatalf("result 1 = %v", rs[1])
	}
	if v, ver, _ := mustGet(t, f, "a"); v != "old" || ver != 1 {
		t.Fatalf("failed command wrote a = %q@%d", v, ver)
	}
	if got := dump(t, f); got != `"a"="old"@1 "d"="ok"@2 ` {
		t.Fatalf("state %s", got)
	}
}

func TestApplySameEntryConflict(t *testing.T) {
	db, _ := openMem(t, nil)
	f := mustFSM(t, db, 1, Options{})
	applyOne(t, f, entry(1, cmd(put("b", "1"))))
	rs := applyOne(t, f, entry(2,
		cmd(put("a", "first")),
		cmd(put("a", "second")),      // conflict: a written by command 0
		cmd(put("c", "x"), del("a")), // conflict on op 1: writes nothing, not even c
		cmd(putIf("b", "2", 1)),      // b untouched in this entry: applies
		cmd(delIf("b", 2)),           // conflict (checked before the condition)
		cmd(put("c", "y")),           // c was not written by the failed command
	))
	want := []string{"ok@2", "conflict", "conflict", "ok@2", "conflict", "ok@2"}
	for i, r := range rs {
		got := resultString(r)
		if errors.Is(r.Err, ErrConflict) {
			got = "conflict"
		}
		if got != want[i] {
			t.Fatalf("result %d = %s, want %s", i, got, want[i])
		}
	}
	if got := dump(t, f); got != `"a"="first"@2 "b"="2"@2 "c"="y"@2 ` {
		t.Fatalf("state %s", got)
	}
	// The same key in the next entry of the same batch is not a conflict and
	// sees the earlier entry's write.
	resps := f.ApplyBatch([]*raft.Log{entry(3, cmd(putIf("a", "third", 2))), entry(4, cmd(putIf("a", "fourth", 3)), cmd(delIf("c", 2)))})
	if got := resultString(resps[0].([]Result)[0]) + " " + resultString(resps[1].([]Result)[0]) + " " + resultString(resps[1].([]Result)[1]); got != "ok@3 ok@4 ok@4" {
		t.Fatalf("batch results %s", got)
	}
	if got := dump(t, f); got != `"a"="fourth"@4 "b"="2"@2 ` {
		t.Fatalf("state %s", got)
	}
}

func TestApplyInvalidCommandFailsAlone(t *testing.T) {
	db, _ := openMem(t, nil)
	f := mustFSM(t, db, 1, Options{})
	rs := applyOne(t, f, entry(1, cmd(put("a", "1"), Op{Kind: 7, Key: []byte("b")}), cmd(put("c", "1")), cmd(put("", "x"))))
	if !errors.Is(rs[0].Err, ErrInvalidCommand) || rs[1].Err != nil || !errors.Is(rs[2].Err, ErrInvalidCommand) {
		t.Fatalf("results %v", rs)
	}
	if f.Err() != nil {
		t.Fatalf("invalid command halted the FSM: %v", f.Err())
	}
	if got := dump(t, f); got != `"c"="1"@1 ` {
		t.Fatalf("state %s", got)
	}
}

func TestApplyConfigurationAdvancesIndexOnly(t *testing.T) {
	db, _ := openMem(t, nil)
	f := mustFSM(t, db, 1, Options{})
	before := mustHash(t, f)
	resps := f.ApplyBatch([]*raft.Log{{Index: 3, Term: 2, Type: raft.LogConfiguration, Data: []byte("whatever")}})
	if resps[0] != nil || f.AppliedIndex() != 3 || mustHash(t, f) != before {
		t.Fatalf("resp %v applied %d", resps[0], f.AppliedIndex())
	}
	f2 := mustFSM(t, db, 1, Options{})
	if f2.AppliedIndex() != 3 {
		t.Fatalf("configuration entry's index not persisted: %d", f2.AppliedIndex())
	}
}

func TestCorruptEntryHaltsFSM(t *testing.T) {
	db, _ := openMem(t, nil)
	f := mustFSM(t, db, 1, Options{})
	bad := entry(2, cmd(put("b", "2")))
	bad.Data[len(bad.Data)/2] ^= 0x40
	resps := f.ApplyBatch([]*raft.Log{entry(1, cmd(put("a", "1"))), bad, entry(3, cmd(put("c", "3")))})

	if rs := resps[0].([]Result); rs[0].Err != nil || rs[0].Version != 1 {
		t.Fatalf("entry before the corrupt one: %v", rs)
	}
	for i := 1; i < 3; i++ {
		if rs := resps[i].([]Result); !errors.Is(rs[0].Err, ErrHalted) {
			t.Fatalf("entry %d: %v", i+1, rs)
		}
	}
	if err := resps[1].([]Result)[0].Err; !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt entry's error does not wrap ErrCorrupt: %v", err)
	}
	if !errors.Is(f.Err(), ErrHalted) || f.AppliedIndex() != 1 {
		t.Fatalf("Err %v applied %d", f.Err(), f.AppliedIndex())
	}
	// Sticky: later entries, snapshots, restores and reads refuse.
	if rs := applyOne(t, f, entry(4, cmd(put("d", "4")))); !errors.Is(rs[0].Err, ErrHalted) {
		t.Fatalf("apply after halt: %v", rs)
	}
	if _, err := f.Snapshot(); !errors.Is(err, ErrHalted) {
		t.Fatalf("snapshot after halt: %v", err)
	}
	if _, _, _, err := f.Get([]byte("a")); !errors.Is(err, ErrHalted) {
		t.Fatalf("get after halt: %v", err)
	}
	// Only the entry before the corrupt one reached Pebble.
	f2 := mustFSM(t, db, 1, Options{})
	if f2.Err() != nil || f2.AppliedIndex() != 1 || dump(t, f2) != `"a"="1"@1 ` {
		t.Fatalf("reopened: err %v applied %d state %s", f2.Err(), f2.AppliedIndex(), dump(t, f2))
	}
}

func TestAlreadyAppliedEntriesAreSkipped(t *testing.T) {
	db, _ := openMem(t, nil)
	f := mustFSM(t, db, 1, Options{})
	applyOne(t, f, entry(5, cmd(put("a", "1"))))
	rs := applyOne(t, f, entry(5, cmd(put("a", "other"))))
	if len(rs) != 1 || !errors.Is(rs[0].Err, ErrAlreadyApplied) {
		t.Fatalf("re-applied entry: %v", rs)
	}
	if v, ver, _ := mustGet(t, f, "a"); v != "1" || ver != 5 {
		t.Fatalf("a = %q@%d", v, ver)
	}
}

func TestOnApply(t *testing.T) {
	db, _ := openMem(t, nil)
	type call struct {
		index uint64
		isNil bool
		keys  []string
	}
	var calls []call
	f := mustFSM(t, db, 1, Options{OnApply: func(index uint64, cmds []Command) {
		c := call{index: index, isNil: cmds == nil}
		for _, cm := range cmds {
			for _, op := range cm.Ops {
				c.keys = append(c.keys, string(op.Key))
			}
		}
		calls = append(calls, c)
	}})
	f.ApplyBatch([]*raft.Log{
		entry(1, cmd(put("a", "1")), cmd(putIf("b", "1", 9)), cmd(put("c", "1"))),
		{Index: 2, Term: 1, Type: raft.LogConfiguration},
		entry(3, cmd(putIf("b", "1", 9))),
	})
	applyOne(t, f, entry(3, cmd(put("z", "skipped"))))
	want := []call{{1, false, []string{"a", "c"}}, {2, true, nil}, {3, false, nil}}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
}

func TestEntryResults(t *testing.T) {
	three := []Result{{Version: 1}, {Err: ErrConflict}, {Version: 1}}
	if got := EntryResults(three, 3); len(got) != 3 || got[1].Err != ErrConflict {
		t.Fatalf("%v", got)
	}
	got := EntryResults([]Result{{Err: ErrAlreadyApplied}}, 4)
	for _, r := range got {
		if !errors.Is(r.Err, ErrAlreadyApplied) {
			t.Fatalf("%v", got)
		}
	}
	if got := EntryResults([]Result{{Version: 3}}, 1); got[0].Version != 3 || got[0].Err != nil {
		t.Fatalf("%v", got)
	}
	for _, resp := range []any{nil, "x", three} {
		for _, r := range EntryResults(resp, 2) {
			if !errors.Is(r.Err, ErrCorrupt) {
				t.Fatalf("resp %v: %v", resp, r)
			}
		}
	}
}

// model is a naive reference implementation of the apply rules.
type model struct {
	vals map[string]string
	vers map[string]uint64
}

func newModel() *model { return &model{vals: map[string]string{}, vers: map[string]uint64{}} }

func (m *model) apply(index uint64, cmds []Command) []string {
	out := make([]string, len(cmds))
	written := map[string]bool{}
cmds:
	for i, c := range cmds {
		if c.Validate() != nil {
			out[i] = "invalid"
			continue
		}
		for _, op := range c.Ops {
			if written[string(op.Key)] {
				out[i] = "conflict"
				continue cmds
			}
		}
		for j, op := range c.Ops {
			if op.HasCond && m.vers[string(op.Key)] != op.CondVersion {
				out[i] = fmt.Sprintf("mismatch(op=%d,cur=%d)", j, m.vers[string(op.Key)])
				continue cmds
			}
		}
		for _, op := range c.Ops {
			written[string(op.Key)] = true
			if op.Kind == OpPut {
				m.vals[string(op.Key)], m.vers[string(op.Key)] = string(op.Value), index
			} else {
				delete(m.vals, string(op.Key))
				delete(m.vers, string(op.Key))
			}
		}
		out[i] = fmt.Sprintf("ok@%d", index)
	}
	return out
}

func (m *model) dump() string {
	keys := make([]string, 0, len(m.vals))
	for k := range m.vals {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	s := ""
	for _, k := range keys {
		s += fmt.Sprintf("%q=%q@%d ", k, m.vals[k], m.vers[k])
	}
	return s
}

// randomEntries makes entries over a small key space so that conditions,
// conflicts and deletes all happen; versions in conditions are drawn from
// recent indexes so that some match.
func randomEntries(rng *rand.Rand, n int) []*raft.Log {
	logs := make([]*raft.Log, 0, n)
	key := func() []byte { return []byte{'k', byte('a' + rng.IntN(6))} }
	for i := 1; i <= n; i++ {
		if rng.IntN(10) == 0 {
			logs = append(logs, &raft.Log{Index: uint64(i), Term: 1, Type: raft.LogConfiguration})
			continue
		}
		cmds := make([]Command, 1+rng.IntN(4))
		for c := range cmds {
			ops := make([]Op, 1+rng.IntN(3))
			for o := range ops {
				op := Op{Kind: OpPut, Key: key(), Value: fmt.Appendf(nil, "v%d", rng.IntN(1000))}
				if rng.IntN(4) == 0 {
					op.Kind, op.Value = OpDelete, nil
				}
				if rng.IntN(2) == 0 {
					op.HasCond = true
					if rng.IntN(3) > 0 {
						op.CondVersion = uint64(max(0, i-1-rng.IntN(4)))
					}
				}
				if rng.IntN(50) == 0 {
					op.Kind = 9
				}
				ops[o] = op
			}
			cmds[c] = Command{Ops: ops}
		}
		logs = append(logs, entry(uint64(i), cmds...))
	}
	return logs
}

// applyChunks applies logs in batches of random sizes and returns the
// rendered results of the command entries.
func applyChunks(t *testing.T, f *FSM, logs []*raft.Log, rng *rand.Rand) [][]string {
	t.Helper()
	var out [][]string
	for len(logs) > 0 {
		n := min(len(logs), 1+rng.IntN(8))
		for i, resp := range f.ApplyBatch(logs[:n]) {
			if logs[i].Type != raft.LogCommand {
				continue
			}
			var rs []string
			for _, r := range resp.([]Result) {
				rs = append(rs, canonical(r))
			}
			out = append(out, rs)
		}
		logs = logs[n:]
	}
	return out
}

func canonical(r Result) string {
	switch {
	case errors.Is(r.Err, ErrConflict):
		return "conflict"
	case errors.Is(r.Err, ErrInvalidCommand):
		return "invalid"
	}
	return resultString(r)
}

func TestApplyMatchesModelAndIsDeterministic(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		logs := randomEntries(rand.New(rand.NewPCG(seed, 0)), 200)

		m := newModel()
		var want [][]string
		for _, l := range logs {
			if l.Type == raft.LogCommand {
				cmds, err := DecodeEntry(l.Data)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, m.apply(l.Index, cmds))
			}
		}

		var hashes []uint64
		for replica := uint64(0); replica < 2; replica++ {
			db, _ := openMem(t, nil)
			f := mustFSM(t, db, 3, Options{})
			got := applyChunks(t, f, logs, rand.New(rand.NewPCG(seed, replica+1)))
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("seed %d replica %d: results differ from the model\n got %v\nwant %v", seed, replica, got, want)
			}
			if d := dump(t, f); d != m.dump() {
				t.Fatalf("seed %d replica %d: state\n got %s\nwant %s", seed, replica, d, m.dump())
			}
			if f.AppliedIndex() != uint64(len(logs)) {
				t.Fatalf("applied %d", f.AppliedIndex())
			}
			hashes = append(hashes, mustHash(t, f))
		}
		if hashes[0] != hashes[1] {
			t.Fatalf("seed %d: replicas hash %x and %x", seed, hashes[0], hashes[1])
		}
	}
}

func TestHashCoversKeysValuesAndVersions(t *testing.T) {
	hash := func(logs ...*raft.Log) uint64 {
		db, _ := openMem(t, nil)
		f := mustFSM(t, db, 1, Options{})
		f.ApplyBatch(logs)
		return mustHash(t, f)
	}
	base := hash(entry(1, cmd(put("a", "1"))))
	for name, h := range map[string]uint64{
		"value":   hash(entry(1, cmd(put("a", "2")))),
		"key":     hash(entry(1, cmd(put("b", "1")))),
		"version": hash(entry(2, cmd(put("a", "1")))),
		"empty":   hash(),
		"split":   hash(entry(1, cmd(put("a1", "")))),
	} {
		if h == base {
			t.Errorf("hash ignores the %s", name)
		}
	}
	if hash(entry(1, cmd(put("a", "1")))) != base {
		t.Error("hash is not deterministic")
	}
}

func TestScan(t *testing.T) {
	db, _ := openMem(t, nil)
	f := mustFSM(t, db, 1, Options{})
	other := mustFSM(t, db, 2, Options{})
	applyOne(t, f, entry(1, cmd(put("a", "1"), put("b", "2"), put("c", "3"), put("d", "4"))))
	applyOne(t, other, entry(1, cmd(put("aa", "other shard"))))
	render := func(kvs []KV) string {
		s := ""
		for _, kv := range kvs {
			s += fmt.Sprintf("%s=%s@%d ", kv.Key, kv.Value, kv.Version)
		}
		return s
	}
	for _, tc := range []struct {
		start, end string
		nilEnd     bool
		limit      int
		want       string
	}{
		{"", "", true, 0, "a=1@1 b=2@1 c=3@1 d=4@1 "},
		{"b", "d", false, 0, "b=2@1 c=3@1 "},
		{"b", "", true, 2, "b=2@1 c=3@1 "},
		{"bb", "", true, -1, "c=3@1 d=4@1 "},
		{"d", "b", false, 0, ""},
		{"e", "", true, 0, ""},
	} {
		var end []byte
		if !tc.nilEnd {
			end = []byte(tc.end)
		}
		kvs, err := f.Scan([]byte(tc.start), end, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if got := render(kvs); got != tc.want {
			t.Errorf("Scan(%q, %q, %d) = %s, want %s", tc.start, tc.end, tc.limit, got, tc.want)
		}
	}
}

func TestCorruptStoredRecordHalts(t *testing.T) {
	db, _ := openMem(t, nil)
	f := mustFSM(t, db, 1, Options{})
	if err := db.Set(DataKey(1, []byte("k")), []byte{1, 2, 3}, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := f.Get([]byte("k")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("get: %v", err)
	}
	if _, err := f.Hash(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("hash: %v", err)
	}
	rs := applyOne(t, f, entry(1, cmd(putIf("k", "v", 0))))
	if !errors.Is(rs[0].Err, ErrHalted) || !errors.Is(rs[0].Err, ErrCorrupt) || f.AppliedIndex() != 0 {
		t.Fatalf("apply over a corrupt record: %v, applied %d", rs, f.AppliedIndex())
	}
}
