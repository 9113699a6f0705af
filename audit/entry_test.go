package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	cloverv1 "github.com/clover-kv/clover/api/cloverv1"
)

func TestEntryRoundTrip(t *testing.T) {
	e := testEntry(3)
	leaf := mustLeaf(t, e)
	again := mustLeaf(t, proto.Clone(e).(*cloverv1.AuditEntry))
	if !bytes.Equal(leaf, again) {
		t.Fatal("encoding is not deterministic")
	}
	got, err := DecodeEntry(leaf)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, e) {
		t.Fatalf("decoded %v, want %v", got, e)
	}
	if _, err := EncodeEntry(nil); !errors.Is(err, ErrBadEntry) {
		t.Fatalf("EncodeEntry(nil) = %v", err)
	}
	if got, err := DecodeEntry(nil); err != nil || !proto.Equal(got, &cloverv1.AuditEntry{}) {
		t.Fatalf("empty leaf: %v %v", got, err)
	}
}

func TestDecodeEntryStrict(t *testing.T) {
	leaf := mustLeaf(t, testEntry(1))
	unknown := protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1)
	loc := mustLeafOf(t, &cloverv1.Locality{Country: "IE"})
	nested := protowire.AppendBytes(protowire.AppendTag(nil, 9, protowire.BytesType), append(loc, unknown...))
	tests := map[string][]byte{
		"unknown-field":        append(bytes.Clone(leaf), unknown...),
		"unknown-nested-field": append(bytes.Clone(leaf), nested...),
		"truncated":            leaf[:len(leaf)-1],
		"garbage":              {0xff, 0xff, 0xff},
		"wrong-wire-type":      protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 1),
		"too-long":             bytes.Repeat([]byte{0}, maxLeaf+1),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeEntry(b); !errors.Is(err, ErrBadEntry) {
				t.Fatalf("DecodeEntry = %v, want ErrBadEntry", err)
			}
		})
	}
	// An entry carrying unknown fields is not encoded: its leaf would
	// not decode.
	e := new(cloverv1.AuditEntry)
	if err := proto.Unmarshal(append(bytes.Clone(leaf), unknown...), e); err != nil {
		t.Fatal(err)
	}
	if _, err := EncodeEntry(e); !errors.Is(err, ErrBadEntry) {
		t.Fatalf("EncodeEntry with unknown fields = %v, want ErrBadEntry", err)
	}
}

func mustLeafOf(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKeyHMAC(t *testing.T) {
	salt := bytes.Repeat([]byte{7}, SaltSize)
	got, err := KeyHMAC(salt, []byte("user:42"))
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, salt)
	m.Write([]byte("user:42"))
	if !bytes.Equal(got, m.Sum(nil)) {
		t.Fatal("not HMAC-SHA256(salt, key)")
	}
	other, _ := KeyHMAC(bytes.Repeat([]byte{8}, SaltSize), []byte("user:42"))
	if bytes.Equal(got, other) {
		t.Fatal("two salts give the same HMAC")
	}
	for name, tt := range map[string]struct{ salt, key []byte }{
		"short-salt": {salt[:31], []byte("k")},
		"long-salt":  {append(bytes.Clone(salt), 1), []byte("k")},
		"no-salt":    {nil, []byte("k")},
		"empty-key":  {salt, nil},
	} {
		if _, err := KeyHMAC(tt.salt, tt.key); !errors.Is(err, ErrBadEntry) {
			t.Errorf("%s: KeyHMAC = %v, want ErrBadEntry", name, err)
		}
	}
}
