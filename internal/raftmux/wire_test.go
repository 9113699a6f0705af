package raftmux

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	for _, shard := range []uint64{0, 1, 1 << 40, ^uint64(0)} {
		v, got, err := decodeHeader(encodeHeader(protocolVersion, shard), muxVersion)
		if err != nil || got != shard || v != protocolVersion {
			t.Fatalf("decode(encode(%d)) = %d, %d, %v", shard, v, got, err)
		}
	}
	h := encodeHeader(protocolVersion, 0x0102030405060708)
	want := []byte{'C', 'L', 'V', 'R', 1, 1, 2, 3, 4, 5, 6, 7, 8}
	if !bytes.Equal(h[:], want) {
		t.Fatalf("header %x, want %x", h, want)
	}
	if v, shard, err := decodeHeader(encodeHeader(muxVersion, 0), muxVersion); err != nil || v != muxVersion || shard != 0 {
		t.Fatalf("multiplexed header decodes as %d, %d, %v", v, shard, err)
	}
	// A node that serves only version 1 refuses version 2 as a bad header,
	// which is how a dialer learns to fall back.
	if _, _, err := decodeHeader(encodeHeader(muxVersion, 0), protocolVersion); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("version 2 at a version-1 node: %v, want ErrBadHeader", err)
	}
	if _, _, err := decodeHeader(encodeHeader(muxVersion, 5), muxVersion); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("multiplexed header naming a shard: %v, want ErrBadHeader", err)
	}
	if _, _, err := decodeHeader(encodeHeader(0, 5), muxVersion); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("version 0: %v, want ErrBadHeader", err)
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
