package raftfsm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// Result is the outcome of one command.
type Result struct {
	// Version is, on success, the Raft index of the entry: the new version
	// of every key the command wrote.
	Version uint64
	// Err is nil, or wraps ErrVersionMismatch (a *MismatchError),
	// ErrConflict, ErrInvalidCommand, ErrAlreadyApplied or ErrHalted.
	Err error
	// Audited reports that the command's audit leaf was appended, as leaf
	// AuditIndex of the shard's audit stream (the tree of size
	// AuditIndex+1 is the first to hold it). It may be true when Err is
	// not nil: a failed command's leaf is still appended.
	Audited    bool
	AuditIndex uint64
}

// pending records a write made earlier in the current batch.
type pending struct {
	index   uint64 // entry that wrote the key
	deleted bool
}

// Apply applies one entry; see ApplyBatch.
func (f *FSM) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed entries in one unsynced Pebble batch that
// also holds the new applied index and term.
//
// The response of a LogCommand entry is a []Result with one Result per
// command, in order. When the whole entry fails (already applied, halted) it
// is a []Result of length one; EntryResults expands it. Other entry types
// (configuration) advance the applied index, change no data and respond nil.
//
// Semantics, all deterministic:
//   - an entry at or below the applied index is skipped (ErrAlreadyApplied);
//   - a command with an invalid audit field (an audit leaf above
//     MaxAuditLeafSize, a salt not of AuditSaltSize bytes) fails with
//     ErrInvalidCommand, writes nothing and appends nothing;
//   - otherwise its salt, if any, becomes the shard's salt unless it has
//     one, and its audit leaf, if any, is appended to the shard's audit
//     stream, whatever becomes of its ops;
//   - a command with invalid ops fails with ErrInvalidCommand;
//   - a command writing a key already written by an earlier command of the
//     same entry fails with ErrConflict;
//   - a command whose condition fails gets a *MismatchError;
//   - otherwise all its ops are written with version = entry index.
//
// A failed command writes no data; the others in the entry still apply.
// Audit leaves, stored hashes and the tree size are written in the same
// batch as the data and the applied index, so the audit stream and the
// data it records commit together and replicas stay byte-identical.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	resps := make([]any, len(logs))
	if err := f.Err(); err != nil {
		fillHalted(resps, err)
		return resps
	}
	b := f.db.NewBatch()
	defer b.Close()
	clear(f.written)
	clear(f.audit.hashes)
	f.audit.size, f.audit.salt = f.auditSizeN.Load(), f.AuditSalt()

	type notice struct {
		index uint64
		cmds  []Command
	}
	var notices []notice
	var halt error
	end := len(logs) // entries [0, end) are in the batch
	prev := f.applied.Load()
	applied, term := prev, f.appliedTerm.Load()
	for i, l := range logs {
		if l.Index <= applied {
			if l.Type == raft.LogCommand {
				resps[i] = []Result{{Err: ErrAlreadyApplied}}
			}
			continue
		}
		if l.Type == raft.LogCommand {
			cmds, err := DecodeEntry(l.Data)
			if err != nil {
				halt = fmt.Errorf("%w: shard %d: entry %d: %w", ErrHalted, f.shard, l.Index, err)
				end = i
				break
			}
			results, ok, err := f.applyEntry(b, l.Index, cmds)
			if err != nil {
				// The batch holds part of this entry: commit nothing.
				halt = fmt.Errorf("%w: shard %d: entry %d: %w", ErrHalted, f.shard, l.Index, err)
				end, notices = 0, nil
				break
			}
			resps[i] = results
			if f.opts.OnApply != nil {
				notices = append(notices, notice{l.Index, ok})
			}
		} else if f.opts.OnApply != nil {
			// Configuration entries change no data but advance the index
			// readers wait on.
			notices = append(notices, notice{l.Index, nil})
		}
		applied, term = l.Index, l.Term
	}
	if end > 0 && applied > prev {
		var rec [appliedRecordLen]byte
		err := b.Set(f.appliedKey, encodeApplied(rec[:0], applied, term), nil)
		if err == nil {
			err = f.writeAuditSize(b)
		}
		if err == nil {
			err = b.Commit(pebble.NoSync)
		}
		if err != nil {
			halt = fmt.Errorf("%w: shard %d: commit up to index %d: %w", ErrHalted, f.shard, applied, err)
			end, notices = 0, nil
		} else {
			f.publishAudit()
			f.appliedTerm.Store(term)
			f.applied.Store(applied)
		}
	}
	if halt != nil {
		f.setHalt(halt)
		fillHalted(resps[end:], halt)
	}
	for _, n := range notices {
		f.opts.OnApply(n.index, n.cmds)
	}
	return resps
}

func fillHalted(resps []any, err error) {
	for i := range resps {
		resps[i] = []Result{{Err: err}}
	}
}

// applyEntry adds the writes of one entry's successful commands, and the
// audit records of its commands, to b. It returns one Result per command
// and, if OnApply is set, the commands that succeeded (non-nil). An error
// means storage failed and b must be discarded.
func (f *FSM) applyEntry(b *pebble.Batch, index uint64, cmds []Command) ([]Result, []Command, error) {
	results := make([]Result, len(cmds))
	var ok []Command
	if f.opts.OnApply != nil {
		ok = make([]Command, 0, len(cmds))
	}
	for ci := range cmds {
		c := &cmds[ci]
		if err := c.validateAudit(); err != nil {
			results[ci].Err = err
			continue
		}
		err, serr := f.check(index, c)
		if serr != nil {
			return nil, nil, serr
		}
		if c.hasAudit() {
			if results[ci].Audited, results[ci].AuditIndex, serr = f.applyAudit(b, c); serr != nil {
				return nil, nil, serr
			}
		}
		if err != nil {
			results[ci].Err = err
			continue
		}
		for _, op := range c.Ops {
			if err := f.write(b, index, op); err != nil {
				return nil, nil, err
			}
		}
		results[ci].Version = index
		if f.opts.OnApply != nil {
			ok = append(ok, *c)
		}
	}
	return results, ok, nil
}

// check decides whether c's ops apply at index. It returns the command's
// failure (err) or a storage failure (serr).
func (f *FSM) check(index uint64, c *Command) (err, serr error) {
	if err := c.validateOps(); err != nil {
		return err, nil
	}
	for j, op := range c.Ops {
		if p, ok := f.written[string(op.Key)]; ok && p.index == index {
			return fmt.Errorf("%w: op %d", ErrConflict, j), nil
		}
	}
	for j, op := range c.Ops {
		if !op.HasCond {
			continue
		}
		cur, err := f.currentVersion(op.Key)
		if err != nil {
			return nil, err
		}
		if cur != op.CondVersion {
			return &MismatchError{OpIndex: j, Current: cur}, nil
		}
	}
	return nil, nil
}

// currentVersion returns the version of key including writes earlier in
// the current batch; 0 means the key does not exist.
func (f *FSM) currentVersion(key []byte) (uint64, error) {
	if p, ok := f.written[string(key)]; ok {
		if p.deleted {
			return 0, nil
		}
		return p.index, nil
	}
	f.keyBuf = AppendDataKey(f.keyBuf[:0], f.shard, key)
	v, closer, err := f.db.Get(f.keyBuf)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read version: %w", storageErr(err))
	}
	defer closer.Close()
	version, _, err := decodeStored(v)
	return version, err
}

func (f *FSM) write(b *pebble.Batch, index uint64, op Op) error {
	f.keyBuf = AppendDataKey(f.keyBuf[:0], f.shard, op.Key)
	var err error
	if op.Kind == OpDelete {
		err = b.Delete(f.keyBuf, nil)
	} else {
		d := b.SetDeferred(len(f.keyBuf), versionLen+len(op.Value))
		copy(d.Key, f.keyBuf)
		binary.BigEndian.PutUint64(d.Value, index)
		copy(d.Value[versionLen:], op.Value)
		err = d.Finish()
	}
	if err != nil {
		return fmt.Errorf("batch write: %w", err)
	}
	f.written[string(op.Key)] = pending{index: index, deleted: op.Kind == OpDelete}
	return nil
}

// EntryResults turns the response of a LogCommand entry (raft's
// ApplyFuture.Response) into exactly n Results, n being the number of
// commands the proposer packed into the entry. A whole-entry failure is
// copied to every command.
func EntryResults(resp any, n int) []Result {
	rs, _ := resp.([]Result)
	switch {
	case len(rs) == n:
		return rs
	case len(rs) == 1 && rs[0].Err != nil:
		out := make([]Result, n)
		for i := range out {
			out[i].Err = rs[0].Err
		}
		return out
	}
	out := make([]Result, n)
	for i := range out {
		out[i].Err = fmt.Errorf("%w: response of type %T with %d results for %d commands", ErrCorrupt, resp, len(rs), n)
	}
	return out
}
