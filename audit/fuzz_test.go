package audit

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"google.golang.org/protobuf/proto"
)

// FuzzDecodeEntry checks that DecodeEntry never panics and that what it
// accepts encodes back to a leaf that decodes to the same entry.
func FuzzDecodeEntry(f *testing.F) {
	f.Add([]byte{})
	f.Add(mustLeaf(f, testEntry(0)))
	f.Add(append(mustLeaf(f, testEntry(1)), 0xf8, 0x06, 0x01)) // unknown field 111
	f.Add([]byte{0x4a, 0x02, 0x0a, 0x00})                      // node_locality with an empty country
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, leaf []byte) {
		e, err := DecodeEntry(leaf)
		if err != nil {
			return
		}
		b, err := EncodeEntry(e)
		if err != nil {
			t.Fatalf("decoded entry does not encode: %v", err)
		}
		e2, err := DecodeEntry(b)
		if err != nil || !proto.Equal(e, e2) {
			t.Fatalf("re-encoded entry decodes to %v, %v", e2, err)
		}
	})
}

// fuzzKey is a fixed Ed25519 key, so that the seed corpus is stable.
var fuzzKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{42}, ed25519.SeedSize))

// FuzzOpenCheckpoint checks that OpenCheckpoint never panics and that a
// checkpoint it accepts is one SignCheckpoint writes with the same text.
func FuzzOpenCheckpoint(f *testing.F) {
	cp := checkpointOf(f, treeOf(f, numberedLeaves(5)), 5)
	good, err := SignCheckpoint(cp, "ie-1", fuzzKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(bytes.Replace(good, []byte("\n5\n"), []byte("\n6\n"), 1))
	f.Add(append(bytes.Clone(good), []byte("— other AAAAAAAAAAAA\n")...))
	f.Add([]byte("clover-audit/prod/shard/3\n\n— ie-1 AAAAAAAA\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, msg []byte) {
		cp, err := OpenCheckpoint(msg, "ie-1", fuzzKey.Public())
		if err != nil {
			return
		}
		text, err := cp.text()
		if err != nil {
			t.Fatalf("opened checkpoint %+v cannot be written: %v", cp, err)
		}
		if !bytes.HasPrefix(msg, []byte(text+"\n")) {
			t.Fatalf("opened text differs from the text it writes:\n%q\n%q", msg, text)
		}
	})
}
