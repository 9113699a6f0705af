package audit

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

func ecdsaKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ed25519Key(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testCheckpoint is a checkpoint of a 37-leaf tree.
func testCheckpoint(t testing.TB) Checkpoint {
	t.Helper()
	return checkpointOf(t, treeOf(t, numberedLeaves(37)), 37)
}

func TestCheckpointRoundTrip(t *testing.T) {
	for name, key := range map[string]crypto.Signer{"ecdsa-p256": ecdsaKey(t), "ed25519": ed25519Key(t)} {
		t.Run(name, func(t *testing.T) {
			cp := testCheckpoint(t)
			cp.Time = time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("CET", 3600))
			msg, err := SignCheckpoint(cp, "ie-1", key)
			if err != nil {
				t.Fatal(err)
			}
			text, _, _ := strings.Cut(string(msg), "\n\n")
			want := "clover-audit/prod/shard/3\n37\n" + encodeRoot(cp) + "\ntime 2025-01-02T02:04:05.000000006Z"
			if text != want {
				t.Fatalf("text\n%s\nwant\n%s", text, want)
			}
			got, err := OpenCheckpoint(msg, "ie-1", key.Public())
			if err != nil {
				t.Fatal(err)
			}
			if got.Origin != cp.Origin || got.Size != cp.Size || got.Root != cp.Root || !got.Time.Equal(cp.Time) || got.Time.Location() != time.UTC {
				t.Fatalf("opened %+v, signed %+v", got, cp)
			}
		})
	}
}

func encodeRoot(cp Checkpoint) string {
	s, _ := cp.text()
	return strings.Split(s, "\n")[2]
}

// TestEd25519CheckpointIsAPlainNote shows that an Ed25519 checkpoint is
// checked by sumdb/note's own verifier: any note tool reads it.
func TestEd25519CheckpointIsAPlainNote(t *testing.T) {
	key := ed25519Key(t)
	msg, err := SignCheckpoint(testCheckpoint(t), "ie-1", key)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := note.NewEd25519VerifierKey("ie-1", key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Fatalf("note.Open: %v", err)
	}
}

func TestTamperedCheckpointRefused(t *testing.T) {
	key := ecdsaKey(t)
	cp := testCheckpoint(t)
	msg, err := SignCheckpoint(cp, "ie-1", key)
	if err != nil {
		t.Fatal(err)
	}
	other := cp
	other.Root[0] ^= 1
	otherRoot := encodeRoot(other)
	tests := []struct {
		name string
		edit func(string) string
	}{
		{"size", func(s string) string { return strings.Replace(s, "\n37\n", "\n38\n", 1) }},
		{"root", func(s string) string { return strings.Replace(s, encodeRoot(cp), otherRoot, 1) }},
		{"origin", func(s string) string { return strings.Replace(s, "shard/3", "shard/4", 1) }},
		{"cluster", func(s string) string { return strings.Replace(s, "/prod/", "/test/", 1) }},
		{"time", func(s string) string { return strings.Replace(s, "time 2025", "time 2026", 1) }},
		{"signature", func(s string) string {
			i := strings.LastIndex(s, " ") + 10
			return s[:i] + string(s[i]^1) + s[i+1:]
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := tt.edit(string(msg))
			if bad == string(msg) {
				t.Fatal("edit changed nothing")
			}
			if _, err := OpenCheckpoint([]byte(bad), "ie-1", key.Public()); err == nil {
				t.Fatal("tampered checkpoint opened")
			}
		})
	}
	t.Run("wrong-key", func(t *testing.T) {
		for _, pub := range []crypto.PublicKey{ecdsaKey(t).Public(), ed25519Key(t).Public()} {
			if _, err := OpenCheckpoint(msg, "ie-1", pub); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("opened with another key: %v, want ErrBadSignature", err)
			}
		}
	})
	t.Run("wrong-signer", func(t *testing.T) {
		if _, err := OpenCheckpoint(msg, "ie-2", key.Public()); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("opened as another signer: %v, want ErrBadSignature", err)
		}
	})
	t.Run("foreign-signature-kept", func(t *testing.T) {
		// Another signer's signature beside the node's does no harm.
		s2, err := newNoteSigner("auditor", ed25519Key(t))
		if err != nil {
			t.Fatal(err)
		}
		n, err := note.Open(msg, note.VerifierList(mustVerifier(t, "ie-1", key.Public())))
		if err != nil {
			t.Fatal(err)
		}
		both, err := note.Sign(n, s2)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := OpenCheckpoint(both, "ie-1", key.Public()); err != nil {
			t.Fatalf("countersigned checkpoint: %v", err)
		}
	})
}

func mustVerifier(t testing.TB, name string, pub crypto.PublicKey) note.Verifier {
	t.Helper()
	v, err := newNoteVerifier(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMalformedCheckpointTextRefused signs texts that break the format
// with a good key: the signature verifies and the text is refused.
func TestMalformedCheckpointTextRefused(t *testing.T) {
	key := ed25519Key(t)
	s, err := newNoteSigner("ie-1", key)
	if err != nil {
		t.Fatal(err)
	}
	root := "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	good := "clover-audit/prod/shard/3\n0\n" + root + "\ntime 2025-01-02T03:04:05Z\n"
	tests := map[string]string{
		"good":               good,
		"leading-zero-size":  strings.Replace(good, "\n0\n", "\n00\n", 1),
		"plus-size":          strings.Replace(good, "\n0\n", "\n+1\n", 1),
		"size-above-int64":   strings.Replace(good, "\n0\n", "\n9223372036854775808\n", 1),
		"negative-size":      strings.Replace(good, "\n0\n", "\n-1\n", 1),
		"root-31-bytes":      strings.Replace(good, root, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuA==", 1),
		"root-url-base64":    strings.Replace(good, root, strings.ReplaceAll(strings.ReplaceAll(root, "+", "-"), "/", "_"), 1),
		"root-unpadded":      strings.Replace(good, root, strings.TrimRight(root, "="), 1),
		"time-with-offset":   strings.Replace(good, "05Z", "05+00:00", 1),
		"time-trailing-zero": strings.Replace(good, "05Z", "05.10Z", 1),
		"time-missing":       strings.Replace(good, "time 2025-01-02T03:04:05Z\n", "", 1),
		"time-no-prefix":     strings.Replace(good, "time ", "", 1),
		"time-zero":          strings.Replace(good, "2025-01-02T03:04:05Z", "0001-01-01T00:00:00Z", 1),
		"extra-line":         good + "extra\n",
		"origin-prefix":      strings.Replace(good, "clover-audit/", "clover-log/", 1),
		"origin-no-stream":   strings.Replace(good, "prod/shard/3", "prod", 1),
		"origin-empty-part":  strings.Replace(good, "prod/", "/", 1),
		"origin-space":       strings.Replace(good, "shard/3", "shard 3", 1),
		"origin-non-ascii":   strings.Replace(good, "prod", "prød", 1),
		"blank-line":         strings.Replace(good, "\n0\n", "\n\n0\n", 1),
		"crlf":               strings.ReplaceAll(good, "\n", "\r\n"),
	}
	for name, text := range tests {
		t.Run(name, func(t *testing.T) {
			msg, err := note.Sign(&note.Note{Text: text}, s)
			if err != nil {
				if name == "good" {
					t.Fatal(err)
				}
				return // note itself refuses it
			}
			_, err = OpenCheckpoint(msg, "ie-1", key.Public())
			if name == "good" {
				if err != nil {
					t.Fatalf("good text refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrBadCheckpoint) {
				t.Fatalf("OpenCheckpoint = %v, want ErrBadCheckpoint", err)
			}
		})
	}
}

func TestSignCheckpointRefuses(t *testing.T) {
	good := testCheckpoint(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	with := func(f func(*Checkpoint)) Checkpoint { cp := good; f(&cp); return cp }
	tests := []struct {
		name   string
		cp     Checkpoint
		signer string
		key    crypto.Signer
		want   error
	}{
		{"zero-time", with(func(c *Checkpoint) { c.Time = time.Time{} }), "ie-1", ecdsaKey(t), ErrBadCheckpoint},
		{"year-10000", with(func(c *Checkpoint) { c.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }), "ie-1", ecdsaKey(t), ErrBadCheckpoint},
		{"size-above-int64", with(func(c *Checkpoint) { c.Size = math.MaxInt64 + 1 }), "ie-1", ecdsaKey(t), ErrBadCheckpoint},
		{"bad-origin", with(func(c *Checkpoint) { c.Origin = "prod/shard/3" }), "ie-1", ecdsaKey(t), ErrBadCheckpoint},
		{"origin-newline", with(func(c *Checkpoint) { c.Origin = "clover-audit/prod/shard/3\n4" }), "ie-1", ecdsaKey(t), ErrBadCheckpoint},
		{"rsa-key", good, "ie-1", rsaKey, ErrBadSignature},
		{"p384-key", good, "ie-1", p384, ErrBadSignature},
		{"nil-key", good, "ie-1", nil, ErrBadSignature},
		{"empty-signer", good, "", ecdsaKey(t), ErrBadSignature},
		{"signer-with-space", good, "ie 1", ecdsaKey(t), ErrBadSignature},
		{"signer-with-plus", good, "ie+1", ecdsaKey(t), ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := SignCheckpoint(tt.cp, tt.signer, tt.key); !errors.Is(err, tt.want) {
				t.Fatalf("SignCheckpoint = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := OpenCheckpoint(bytes.Repeat([]byte("a"), maxNote+1), "ie-1", ecdsaKey(t).Public()); !errors.Is(err, ErrBadCheckpoint) {
		t.Fatalf("huge note: %v", err)
	}
	if _, err := OpenCheckpoint([]byte("not a note"), "ie-1", ecdsaKey(t).Public()); !errors.Is(err, ErrBadCheckpoint) {
		t.Fatalf("garbage: %v", err)
	}
	if _, err := OpenCheckpoint([]byte("x\n\n— ie-1 AAAAAAAA\n"), "ie-1", rsaKey.Public()); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("RSA public key: %v", err)
	}
}
