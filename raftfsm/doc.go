// Package raftfsm is the replicated state machine of Clover: the command
// encoding, the deterministic apply of Raft entries to Pebble, snapshot and
// restore, and the Raft log and stable store. It does no networking, reads
// no clock and knows nothing of the server.
//
// One Pebble DB per node holds every shard (Raft group). All keys of a
// shard share one prefix (see ShardSpan), so a replica is removed with
// DeleteShard.
//
// Wiring one shard into hashicorp/raft:
//
//	db, err := raftfsm.OpenDB(dir, raftfsm.DBOptions{})      // once per node
//	fsm, err := raftfsm.New(db, shard, raftfsm.Options{
//		Guard: func() error { return mayHold(shard) },     // residency check
//	})
//	store, err := raftfsm.NewLogStore(db, shard)
//	logs, err := raft.NewLogCache(512, store)
//	snaps, err := raft.NewFileSnapshotStore(snapDir, 2, logOutput)
//	restore, err := fsm.NeedsRestore(snaps)
//	conf.NoSnapshotRestoreOnStart = !restore                  // the FSM persists its own state
//	r, err := raft.NewRaft(conf, fsm, logs, store, snaps, transport)
//
// Proposing: validate each command, pack one or more into an entry, and
// read one Result per command from the future:
//
//	cmd := raftfsm.Command{Ops: []raftfsm.Op{
//		{Kind: raftfsm.OpPut, Key: k, Value: v, HasCond: true, CondVersion: 0}, // create only
//	}}
//	if err := cmd.Validate(); err != nil { ... }
//	f := r.Apply(raftfsm.EncodeEntry(nil, []raftfsm.Command{cmd}), timeout)
//	if err := f.Error(); err != nil { ... }                     // not committed
//	res := raftfsm.EntryResults(f.Response(), 1)[0]
//	var mm *raftfsm.MismatchError
//	switch {
//	case res.Err == nil:                       // res.Version = the key's new version
//	case errors.As(res.Err, &mm):              // mm.Current = the key's version
//	case errors.Is(res.Err, raftfsm.ErrConflict): // retry in a later entry
//	}
//
// Auditing: every shard keeps an append-only Merkle tree log (RFC 6962, via
// golang.org/x/mod/sumdb/tlog) of opaque leaves, and a salt. A command
// carries at most one leaf, alone (a read's record) or with its ops (a
// write and its record commit in the same entry); the leaf is appended even
// if the ops fail. The first salt proposed is kept:
//
//	cmd := raftfsm.Command{Ops: ops, Audit: leaf}                // 1..64 KiB
//	init := raftfsm.Command{AuditSalt: salt}                      // 32 bytes, once
//	res := raftfsm.EntryResults(f.Response(), 1)[0]              // res.Audited, res.AuditIndex
//	v, err := fsm.AuditView()                                    // one consistent view
//	defer v.Close()
//	root, err := v.Root()                                        // tree of v.Size() leaves
//	proof, err := tlog.ProveRecord(int64(v.Size()), i, v.HashReader())
//
// Reading: wait until fsm.AppliedIndex() reaches the read index, then call
// Get or Scan. Check fsm.Err() too: a halted FSM (see FSM) refuses reads and
// applies and must be taken out of service.
//
// Durability: log appends are synced; FSM batches are not, and carry the
// applied index, so after a crash the FSM resumes from its persisted applied
// index and raft replays the rest of its log (entries at or below the
// applied index are skipped).
package raftfsm
