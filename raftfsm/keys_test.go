package raftfsm

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestShardSpanContainsExactlyTheShard(t *testing.T) {
	for _, shard := range []uint64{0, 1, 255, 256, 1<<63 + 5, ^uint64(0) - 1, ^uint64(0)} {
		start, end := ShardSpan(shard)
		if bytes.Compare(start, end) >= 0 {
			t.Fatalf("shard %d: empty span", shard)
		}
		in := [][]byte{
			DataKey(shard, nil), DataKey(shard, []byte{0xff, 0xff, 0xff}),
			appliedKey(shard), appendLogKey(nil, shard, 0), appendLogKey(nil, shard, ^uint64(0)),
			stableKey(shard, []byte("CurrentTerm")),
		}
		for _, k := range in {
			if bytes.Compare(k, start) < 0 || bytes.Compare(k, end) >= 0 {
				t.Fatalf("shard %d: key %x outside [%x, %x)", shard, k, start, end)
			}
			if !bytes.HasPrefix(k, ShardPrefix(shard)) {
				t.Fatalf("shard %d: key %x lacks prefix", shard, k)
			}
		}
		if shard < ^uint64(0) {
			if k := DataKey(shard+1, nil); bytes.Compare(k, end) < 0 {
				t.Fatalf("shard %d: next shard key %x inside span", shard, k)
			}
		}
		if shard > 0 {
			if k := DataKey(shard-1, bytes.Repeat([]byte{0xff}, 20)); bytes.Compare(k, start) >= 0 {
				t.Fatalf("shard %d: previous shard key %x inside span", shard, k)
			}
		}
		if node := []byte{NodeKeyPrefix, 0xff}; bytes.Compare(node, start) >= 0 && bytes.Compare(node, end) < 0 {
			t.Fatalf("node key inside shard %d span", shard)
		}
	}
}

func TestAppendDataKeyMatchesDataKey(t *testing.T) {
	buf := []byte("junk")
	got := AppendDataKey(buf[:0], 42, []byte("user"))
	if !bytes.Equal(got, DataKey(42, []byte("user"))) {
		t.Fatalf("%x != %x", got, DataKey(42, []byte("user")))
	}
}

func TestRedactedKeyHidesUserBytes(t *testing.T) {
	secret := []byte("alice@example.com")
	for _, k := range [][]byte{DataKey(3, secret), stableKey(3, secret), secret} {
		s := fmt.Sprint(redactedKey(k))
		if strings.Contains(s, "alice") || strings.Contains(s, fmt.Sprintf("%x", secret[:5])) {
			t.Fatalf("formatted key %q reveals user bytes", s)
		}
	}
	if s := fmt.Sprint(redactedKey(appendLogKey(nil, 3, 77))); s != "r3/l/77" {
		t.Fatalf("log key formatted as %q", s)
	}
	if s := fmt.Sprint(redactedValue(secret)); strings.Contains(s, "alice") {
		t.Fatalf("formatted value %q reveals user bytes", s)
	}
}
