package keys

import (
	"math"
	"math/rand"
	"strings"
	"testing"
)

func TestRangesAgreeWithShardIndex(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 8, 64, 1000} {
		rs := Ranges(n)
		if rs[0].Start != 0 || rs[n-1].End != math.MaxUint64 {
			t.Fatalf("n=%d: ranges do not cover the space: %+v .. %+v", n, rs[0], rs[n-1])
		}
		for i := range rs {
			if i > 0 && rs[i].Start != rs[i-1].End+1 {
				t.Fatalf("n=%d: gap or overlap between %d and %d", n, i-1, i)
			}
			for _, h := range []uint64{rs[i].Start, rs[i].End} {
				if got := ShardIndex(h, n); got != i {
					t.Fatalf("n=%d: ShardIndex(%d)=%d, want %d", n, h, got, i)
				}
			}
		}
		rnd := rand.New(rand.NewSource(int64(n)))
		for j := 0; j < 1000; j++ {
			h := rnd.Uint64()
			i := ShardIndex(h, n)
			if h < rs[i].Start || h > rs[i].End {
				t.Fatalf("n=%d: hash %d mapped to %d outside %+v", n, h, i, rs[i])
			}
		}
	}
}

func TestHashIsFixed(t *testing.T) {
	// The hash decides where stored data lives: it must never change.
	if got := Hash([]byte("user/42")); got != 0xe89f2a24fc2bb767 {
		t.Fatalf("Hash changed: %#x", got)
	}
}

func TestLimits(t *testing.T) {
	if err := ValidateKey(make([]byte, MaxKeyBytes)); err != nil {
		t.Fatal(err)
	}
	if err := ValidateKey(make([]byte, MaxKeyBytes+1)); err == nil || !strings.Contains(err.Error(), "4096") {
		t.Fatalf("oversized key: %v", err)
	}
	if err := ValidateKey(nil); err == nil {
		t.Fatal("empty key accepted")
	}
	if err := ValidateValue(make([]byte, MaxValueBytes+1)); err == nil || !strings.Contains(err.Error(), "1 MiB") {
		t.Fatalf("oversized value: %v", err)
	}
	if err := ValidateBatchSize(MaxBatchOps+1, 10); err == nil {
		t.Fatal("oversized batch accepted")
	}
	if err := ValidateBatchSize(1, MaxBatchBytes+1); err == nil {
		t.Fatal("oversized batch accepted")
	}
}
