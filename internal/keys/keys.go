// Package keys holds what the client and the server must agree on about user
// keys: the fixed 64-bit hash that maps a key to a shard, the shard hash
// ranges, and the size limits of keys, values and batches.
//
// Shard boundaries are numbers in hash space, never user keys, so the
// catalogue that records them holds no user data.
//
//	h := keys.Hash(key)
//	i := keys.ShardIndex(h, len(shards)) // position of the shard in the keyspace
package keys

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// Limits on user data. Requests beyond them fail with InvalidArgument and a
// message that names the limit.
const (
	MaxKeyBytes   = 4 << 10 // 4 KiB
	MaxValueBytes = 1 << 20 // 1 MiB
	MaxBatchOps   = 1000
	MaxBatchBytes = 4 << 20 // 4 MiB of keys and values
)

// Hash is the fixed 64-bit hash of a user key (xxHash64, seed 0). It must never
// change: shard placement of stored data depends on it.
func Hash(key []byte) uint64 { return xxhash.Sum64(key) }

// ShardIndex maps a hash to one of n equal hash ranges: index i covers
// [i*2^64/n, (i+1)*2^64/n). n must be positive.
func ShardIndex(hash uint64, n int) int {
	hi, _ := bits.Mul64(hash, uint64(n))
	return int(hi)
}

// Range is an inclusive range of hash values.
type Range struct{ Start, End uint64 }

// Ranges returns the n hash ranges of a keyspace with n shards, in order; they
// cover the whole 64-bit space without overlap and agree with ShardIndex.
func Ranges(n int) []Range {
	out := make([]Range, n)
	for i := 0; i < n; i++ {
		out[i].Start = rangeStart(i, n)
		if i == n-1 {
			out[i].End = math.MaxUint64
		} else {
			out[i].End = rangeStart(i+1, n) - 1
		}
	}
	return out
}

// rangeStart is the smallest hash h with ShardIndex(h, n) == i: ceil(i*2^64/n).
func rangeStart(i, n int) uint64 {
	if i == 0 {
		return 0
	}
	// i*2^64 as a 128-bit number (hi=i, lo=0) divided by n, rounded up.
	q, r := bits.Div64(uint64(i), 0, uint64(n))
	if r != 0 {
		q++
	}
	return q
}

// ValidateKey checks a key against the limits.
func ValidateKey(key []byte) error {
	if len(key) == 0 {
		return fmt.Errorf("key is empty")
	}
	if len(key) > MaxKeyBytes {
		return fmt.Errorf("key is %d bytes, over the limit of %d bytes (4 KiB)", len(key), MaxKeyBytes)
	}
	return nil
}

// ValidateValue checks a value against the limits.
func ValidateValue(value []byte) error {
	if len(value) > MaxValueBytes {
		return fmt.Errorf("value is %d bytes, over the limit of %d bytes (1 MiB)", len(value), MaxValueBytes)
	}
	return nil
}

// ValidateBatchSize checks a batch's op count and total bytes against the limits.
func ValidateBatchSize(ops, bytes int) error {
	if ops == 0 {
		return fmt.Errorf("batch is empty")
	}
	if ops > MaxBatchOps {
		return fmt.Errorf("batch has %d ops, over the limit of %d ops", ops, MaxBatchOps)
	}
	if bytes > MaxBatchBytes {
		return fmt.Errorf("batch holds %d bytes of keys and values, over the limit of %d bytes (4 MiB)", bytes, MaxBatchBytes)
	}
	return nil
}

// Fingerprint identifies a key in logs and errors without revealing it: the
// first 8 bytes of its hash, in hex.
func Fingerprint(key []byte) string { return fmt.Sprintf("%016x", Hash(key)) }
