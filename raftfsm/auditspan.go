package raftfsm

// AuditSpan returns [start, end) covering every record of shard's audit
// stream (leaves, stored hashes, size and salt) and nothing else.
func AuditSpan(shard uint64) (start, end []byte) { return kindSpan(shard, kindAudit) }
