package raftfsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"testing/quick"
)

// normalize returns cmds as DecodeEntry returns them: empty slices are nil
// and CondVersion is 0 without a condition.
func normalize(cmds []Command) []Command {
	out := make([]Command, len(cmds))
	for i, c := range cmds {
		if len(c.Audit) != 0 {
			out[i].Audit = c.Audit
		}
		if len(c.AuditSalt) != 0 {
			out[i].AuditSalt = c.AuditSalt
		}
		if len(c.Ops) == 0 {
			continue
		}
		out[i].Ops = make([]Op, len(c.Ops))
		for j, op := range c.Ops {
			if len(op.Key) == 0 {
				op.Key = nil
			}
			if len(op.Value) == 0 {
				op.Value = nil
			}
			if !op.HasCond {
				op.CondVersion = 0
			}
			out[i].Ops[j] = op
		}
	}
	return out
}

func sampleEntry() []Command {
	return []Command{
		cmd(put("a", "1"), putIf("b", strings.Repeat("x", 300), 7)),
		cmd(),
		cmd(del("c"), delIf("d", 0), Op{Kind: 9, Key: []byte("e"), HasCond: true, CondVersion: 1 << 62}),
	}
}

// sampleAuditEntry has every combination of ops and audit fields.
func sampleAuditEntry() []Command {
	withAudit := cmd(put("a", "1"), putIf("b", "2", 3))
	withAudit.Audit = []byte("leaf of a write")
	readOnly := Command{Audit: []byte("leaf of a read")}
	salted := Command{AuditSalt: bytes.Repeat([]byte{0xa5}, AuditSaltSize)}
	return []Command{withAudit, cmd(), readOnly, salted, cmd(del("c"))}
}

func TestEntryRoundTrip(t *testing.T) {
	for _, cmds := range [][]Command{nil, {}, {cmd()}, sampleEntry(), sampleAuditEntry()} {
		enc := EncodeEntry([]byte("prefix"), cmds)
		if string(enc[:6]) != "prefix" {
			t.Fatal("EncodeEntry did not append")
		}
		got, err := DecodeEntry(enc[6:])
		if err != nil {
			t.Fatal(err)
		}
		if want := normalize(cmds); !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
		}
	}
}

func TestEntryRoundTripProperty(t *testing.T) {
	prop := func(cmds []Command) bool {
		enc := EncodeEntry(nil, cmds)
		got, err := DecodeEntry(enc)
		if err != nil {
			t.Log(err)
			return false
		}
		return reflect.DeepEqual(got, normalize(cmds)) && bytes.Equal(EncodeEntry(nil, got), enc)
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 500}); err != nil {
		t.Fatal(err)
	}
}

// TestEntryVersion checks that version 2 is written exactly when a command
// has an audit field, so entries without one keep their version 1 bytes.
func TestEntryVersion(t *testing.T) {
	if enc := EncodeEntry(nil, sampleEntry()); enc[0] != 1 {
		t.Fatalf("entry without audit fields has version %d", enc[0])
	}
	// The version 1 encoding of one put, byte for byte.
	want := withCRC(1, 1, 1, byte(OpPut), 0, 1, 'k', 1, 'v')
	if enc := EncodeEntry(nil, []Command{cmd(put("k", "v"))}); !bytes.Equal(enc, want) {
		t.Fatalf("v1 encoding changed:\n got %x\nwant %x", enc, want)
	}
	// An empty, non-nil audit field is absent.
	if enc := EncodeEntry(nil, []Command{{Audit: []byte{}, AuditSalt: []byte{}}}); enc[0] != 1 {
		t.Fatalf("empty audit fields give version %d", enc[0])
	}
	for i, c := range sampleAuditEntry() {
		if !c.hasAudit() {
			continue
		}
		if enc := EncodeEntry(nil, []Command{cmd(), c}); enc[0] != 2 {
			t.Fatalf("command %d with an audit field gives version %d", i, enc[0])
		}
	}
	want = withCRC(2, 1, 1, byte(OpPut), 0, 1, 'k', 1, 'v', 2, 'l', 'f', 0)
	c := cmd(put("k", "v"))
	c.Audit = []byte("lf")
	if enc := EncodeEntry(nil, []Command{c}); !bytes.Equal(enc, want) {
		t.Fatalf("v2 encoding:\n got %x\nwant %x", enc, want)
	}
}

func TestDecodeEntryRejectsEveryTruncationAndFlip(t *testing.T) {
	for _, cmds := range [][]Command{sampleEntry(), sampleAuditEntry()} {
		rejectsEveryTruncationAndFlip(t, EncodeEntry(nil, cmds))
	}
}

func rejectsEveryTruncationAndFlip(t *testing.T, enc []byte) {
	t.Helper()
	for n := 0; n < len(enc); n++ {
		if _, err := DecodeEntry(enc[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d: err = %v", n, err)
		}
	}
	for i := range enc {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			b := bytes.Clone(enc)
			b[i] ^= mask
			if _, err := DecodeEntry(b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("byte %d ^ %#x: err = %v", i, mask, err)
			}
		}
	}
	if _, err := DecodeEntry(append(bytes.Clone(enc), 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("trailing byte: err = %v", err)
	}
}

// withCRC seals a hand-made body so that only the structural checks can
// reject it.
func withCRC(body ...byte) []byte {
	return binary.LittleEndian.AppendUint32(body, crc32.Checksum(body, castagnoli))
}

func TestDecodeEntryStructuralChecks(t *testing.T) {
	cases := map[string][]byte{
		"bad version":        withCRC(2, 0),
		"trailing bytes":     withCRC(1, 0, 0),
		"absurd cmd count":   withCRC(1, 0xff, 0xff, 0xff, 0xff, 0x0f),
		"absurd op count":    withCRC(1, 1, 0x7f),
		"absurd key length":  withCRC(1, 1, 1, byte(OpPut), 0, 0xff, 0x7f, 0),
		"non-minimal varint": withCRC(1, 0x80, 0x00),
		"varint overflow":    withCRC(1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
		"unknown flag":       withCRC(1, 1, 1, byte(OpPut), 0x02, 1, 'k', 0),
		"truncated cond":     withCRC(1, 1, 1, byte(OpPut), 0x01),
		"missing value len":  withCRC(1, 1, 1, byte(OpPut), 0, 1, 'k'),
		"unknown version":    withCRC(3, 0),
		"v2 without audit":   withCRC(2, 1, 0, 0, 0),
		"v2 empty":           withCRC(2, 0),
		"v2 missing salt":    withCRC(2, 1, 0, 1, 'a'),
		"v2 absurd leaf len": withCRC(2, 1, 0, 0xff, 0x7f, 0),
		"v2 absurd cmds":     withCRC(2, 2, 0, 1, 'a', 0),
	}
	for name, b := range cases {
		if _, err := DecodeEntry(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	// The same shape with sane fields decodes.
	if _, err := DecodeEntry(withCRC(1, 1, 1, byte(OpPut), 0, 1, 'k', 0)); err != nil {
		t.Fatalf("valid hand-made entry: %v", err)
	}
	got, err := DecodeEntry(withCRC(2, 1, 0, 1, 'a', 0))
	if err != nil || len(got) != 1 || string(got[0].Audit) != "a" || got[0].AuditSalt != nil || got[0].Ops != nil {
		t.Fatalf("valid hand-made v2 entry: %+v, %v", got, err)
	}
}

func TestDecodeEntryRandomInputNeverPanics(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	valid := EncodeEntry(nil, append(sampleEntry(), sampleAuditEntry()...))
	for i := 0; i < 20000; i++ {
		var b []byte
		if i%2 == 0 {
			b = make([]byte, rng.IntN(64))
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
		} else {
			b = bytes.Clone(valid[:rng.IntN(len(valid))])
		}
		if _, err := DecodeEntry(b); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err %v does not wrap ErrCorrupt", err)
		}
	}
}

func TestValidate(t *testing.T) {
	big := strings.Repeat("k", MaxKeySize+1)
	many := make([]Op, 40)
	for i := range many {
		many[i] = put(string(rune('A'+i)), "v")
	}
	manyDup := append(append([]Op{}, many...), put("C", "x"))
	cases := []struct {
		name string
		c    Command
		ok   bool
	}{
		{"empty command", cmd(), true},
		{"put", cmd(put("k", "")), true},
		{"put and delete", cmd(put("a", "1"), del("b")), true},
		{"many distinct", Command{Ops: many}, true},
		{"unknown kind", cmd(Op{Kind: 3, Key: []byte("k")}), false},
		{"zero kind", cmd(Op{Key: []byte("k")}), false},
		{"empty key", cmd(put("", "v")), false},
		{"key too long", cmd(put(big, "v")), false},
		{"delete with value", cmd(Op{Kind: OpDelete, Key: []byte("k"), Value: []byte("v")}), false},
		{"duplicate key", cmd(put("a", "1"), del("a")), false},
		{"duplicate key in many", Command{Ops: manyDup}, false},
		{"audit only", Command{Audit: []byte("r")}, true},
		{"audit of max size", Command{Audit: make([]byte, MaxAuditLeafSize)}, true},
		{"audit too long", Command{Audit: make([]byte, MaxAuditLeafSize+1)}, false},
		{"salt", Command{AuditSalt: make([]byte, AuditSaltSize)}, true},
		{"short salt", Command{AuditSalt: make([]byte, AuditSaltSize-1)}, false},
		{"long salt", Command{AuditSalt: make([]byte, AuditSaltSize+1)}, false},
		{"write and audit", Command{Ops: []Op{put("k", "v")}, Audit: []byte("w")}, true},
		{"bad ops with audit", Command{Ops: []Op{put("", "v")}, Audit: []byte("w")}, false},
	}
	for _, tc := range cases {
		err := tc.c.Validate()
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidCommand)) {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
	if err := cmd(Op{Kind: OpPut, Key: []byte("k"), Value: make([]byte, MaxValueSize+1)}).Validate(); !errors.Is(err, ErrInvalidCommand) {
		t.Errorf("value too long: err = %v", err)
	}
}
