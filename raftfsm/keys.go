package raftfsm

import "encoding/binary"

// Key layout of the node's single Pebble DB.
//
// Every key of one Raft group (shard) starts with the same 11-byte prefix,
// so removing a replica is one DeleteRange over ShardSpan:
//
//	'r' | shard (8 bytes, big-endian) | kind | rest
//
// kinds:
//
//	'a'  applied-index record (rest empty)
//	'd'  user data            (rest = user key)
//	'l'  raft log             (rest = index, 8 bytes big-endian)
//	's'  raft stable store    (rest = stable key bytes)
//	't'  audit stream         (rest = audit kind | detail, below)
//
// audit kinds, under 't':
//
//	'h'  stored hash  (detail = tlog stored-hash index, 8 bytes big-endian)
//	'l'  leaf         (detail = leaf index, 8 bytes big-endian)
//	's'  salt         (detail empty)
//	'z'  tree size    (detail empty)
//
// Keys that belong to the node rather than to a shard start with
// NodeKeyPrefix. This package writes none; the byte is reserved so that node
// keys never fall inside a shard span.
const (
	// ShardKeyPrefix is the first byte of every shard key.
	ShardKeyPrefix byte = 'r'
	// NodeKeyPrefix is the first byte of node-local keys that belong to no shard.
	NodeKeyPrefix byte = 'n'
)

const (
	kindApplied byte = 'a'
	kindData    byte = 'd'
	kindLog     byte = 'l'
	kindStable  byte = 's'
	kindAudit   byte = 't'
)

const (
	auditHash byte = 'h'
	auditLeaf byte = 'l'
	auditSalt byte = 's'
	auditSize byte = 'z'
)

// shardPrefixLen is len(ShardPrefix(x)); kindPrefixLen adds the kind byte.
const (
	shardPrefixLen = 9
	kindPrefixLen  = shardPrefixLen + 1
)

// ShardPrefix returns the prefix shared by every key of shard.
func ShardPrefix(shard uint64) []byte {
	return appendShardPrefix(make([]byte, 0, shardPrefixLen), shard)
}

func appendShardPrefix(dst []byte, shard uint64) []byte {
	dst = append(dst, ShardKeyPrefix)
	return binary.BigEndian.AppendUint64(dst, shard)
}

// ShardSpan returns [start, end) covering every key of shard and nothing else.
func ShardSpan(shard uint64) (start, end []byte) {
	start = ShardPrefix(shard)
	if shard == ^uint64(0) {
		return start, []byte{ShardKeyPrefix + 1}
	}
	return start, ShardPrefix(shard + 1)
}

// kindPrefix returns the prefix of one kind of key of shard.
func kindPrefix(shard uint64, kind byte) []byte {
	return append(appendShardPrefix(make([]byte, 0, kindPrefixLen), shard), kind)
}

// kindSpan returns [start, end) covering every key of one kind of shard.
func kindSpan(shard uint64, kind byte) (start, end []byte) {
	start = kindPrefix(shard, kind)
	end = kindPrefix(shard, kind+1)
	return start, end
}

// DataKey returns the Pebble key that holds userKey of shard.
func DataKey(shard uint64, userKey []byte) []byte {
	return AppendDataKey(make([]byte, 0, kindPrefixLen+len(userKey)), shard, userKey)
}

// AppendDataKey appends the Pebble key that holds userKey of shard to dst.
func AppendDataKey(dst []byte, shard uint64, userKey []byte) []byte {
	dst = appendShardPrefix(dst, shard)
	dst = append(dst, kindData)
	return append(dst, userKey...)
}

func appliedKey(shard uint64) []byte { return kindPrefix(shard, kindApplied) }

func appendLogKey(dst []byte, shard, index uint64) []byte {
	dst = appendShardPrefix(dst, shard)
	dst = append(dst, kindLog)
	return binary.BigEndian.AppendUint64(dst, index)
}

func stableKey(shard uint64, key []byte) []byte {
	dst := make([]byte, 0, kindPrefixLen+len(key))
	dst = appendShardPrefix(dst, shard)
	dst = append(dst, kindStable)
	return append(dst, key...)
}

// appendAuditKey appends the key of an audit record of shard: an indexed
// one (hash, leaf) or, for salt and size, one without detail.
func appendAuditKey(dst []byte, shard uint64, kind byte, index uint64) []byte {
	dst = appendShardPrefix(dst, shard)
	dst = append(dst, kindAudit, kind)
	if kind == auditHash || kind == auditLeaf {
		dst = binary.BigEndian.AppendUint64(dst, index)
	}
	return dst
}
