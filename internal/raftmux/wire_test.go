package raftmux

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	for _, shard := range []uint64{0, 1, 1 << 40, ^uint64(0)} {
		got, err := decodeHeader(encodeHeader(shard))
		if err != nil || got != shard {
			t.Fatalf("decode(encode(%d)) = %d, %v", shard, got, err)
		}
	}
	h := encodeHeader(0x0102030405060708)
	want := []byte{'C', 'L', 'V', 'R', 1, 1, 2, 3, 4, 5, 6, 7, 8}
	if !bytes.Equal(h[:], want) {
		t.Fatalf("header %x, want %x", h, want)
	}
}

func TestReadReply(t *testing.T) {
	long := strings.Repeat("x", maxReasonLen+10)
	var refusal, longRefusal bytes.Buffer
	if err := writeRefusal(&refusal, "outside policy"); err != nil {
		t.Fatal(err)
	}
	if err := writeRefusal(&longRefusal, long); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		in   []byte
		want error // nil means OK
		text string
	}{
		{"ok", []byte{0}, nil, ""},
		{"unknown shard", []byte{1}, ErrUnknownShard, ""},
		{"bad header", []byte{3}, ErrBadHeader, ""},
		{"refused", refusal.Bytes(), ErrRefused, "outside policy"},
		{"refused, reason cut to the limit", longRefusal.Bytes(), ErrRefused, strings.Repeat("x", maxReasonLen)},
		{"refused, truncated reason", refusal.Bytes()[:5], ErrRefused, "unreadable"},
		{"refused, no length", []byte{2, 0}, ErrRefused, "unreadable"},
		{"refused, oversize length", []byte{2, 0xff, 0xff}, ErrRefused, "exceeds"},
		{"unknown status", []byte{9}, ErrHandshake, "unknown status 9"},
		{"empty", nil, ErrHandshake, "EOF"},
	}
	for _, tc := range cases {
		err := readReply(bytes.NewReader(tc.in))
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: got %v, want %v containing %q", tc.name, err, tc.want, tc.text)
		}
	}
}
