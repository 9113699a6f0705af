package raftfsm

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
)

// BenchmarkApplyBatch applies batches of 64 entries, each one command
// putting a 16-byte key and a 256-byte value, on a DB on disk.
func BenchmarkApplyBatch(b *testing.B) {
	db, err := OpenDB(b.TempDir(), DBOptions{Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	f := mustFSM(b, db, 1, Options{})
	const perBatch = 64
	value := make([]byte, 256)
	logs := make([]*raft.Log, perBatch)
	key := make([]byte, 16)
	var index uint64
	b.SetBytes(perBatch * (16 + 256))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j := range logs {
			index++
			binary.BigEndian.PutUint64(key, index*0x9E3779B97F4A7C15) // spread keys
			binary.BigEndian.PutUint64(key[8:], index)
			logs[j] = &raft.Log{Index: index, Term: 1, Type: raft.LogCommand,
				Data: EncodeEntry(nil, []Command{{Ops: []Op{{Kind: OpPut, Key: key, Value: value}}}})}
		}
		b.StartTimer()
		for _, resp := range f.ApplyBatch(logs) {
			if rs := resp.([]Result); rs[0].Err != nil {
				b.Fatal(rs[0].Err)
			}
		}
	}
}

// BenchmarkApplyAudit applies batches of 64 entries, each of 64 commands
// carrying a 200-byte audit leaf (half of them also putting a 16-byte key
// and a 256-byte value), on a DB on disk: the cost of the audit stream's
// leaves and stored hashes next to BenchmarkApplyBatch.
func BenchmarkApplyAudit(b *testing.B) {
	db, err := OpenDB(b.TempDir(), DBOptions{Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	f := mustFSM(b, db, 1, Options{})
	const perBatch, perEntry = 64, 64
	value := make([]byte, 256)
	logs := make([]*raft.Log, perBatch)
	cmds := make([]Command, perEntry)
	var index uint64
	b.SetBytes(perBatch * perEntry * (200 + (16+256)/2))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j := range logs {
			index++
			for c := range cmds {
				leaf := make([]byte, 200)
				binary.BigEndian.PutUint64(leaf, index)
				binary.BigEndian.PutUint64(leaf[8:], uint64(c))
				cmds[c] = Command{Audit: leaf}
				if c%2 == 0 {
					key := make([]byte, 16)
					binary.BigEndian.PutUint64(key, index*0x9E3779B97F4A7C15)
					binary.BigEndian.PutUint64(key[8:], uint64(c))
					cmds[c].Ops = []Op{{Kind: OpPut, Key: key, Value: value}}
				}
			}
			logs[j] = &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: EncodeEntry(nil, cmds)}
		}
		b.StartTimer()
		for _, resp := range f.ApplyBatch(logs) {
			for _, r := range resp.([]Result) {
				if r.Err != nil || !r.Audited {
					b.Fatal(r.Err)
				}
			}
		}
	}
	b.StopTimer()
	if want := uint64(b.N * perBatch * perEntry); f.AuditSize() != want {
		b.Fatalf("audit size %d, want %d", f.AuditSize(), want)
	}
}

// BenchmarkLogStoreAppend stores synced batches of entries of 256 bytes.
func BenchmarkLogStoreAppend(b *testing.B) {
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			db, err := OpenDB(b.TempDir(), DBOptions{Logger: quietLogger()})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			s := mustLogStore(b, db, 1)
			logs := make([]*raft.Log, n)
			data := make([]byte, 256)
			var index uint64
			b.SetBytes(int64(n * len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range logs {
					index++
					logs[j] = &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
				}
				if err := s.StoreLogs(logs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
