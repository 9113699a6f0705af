package audit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// Signature algorithm bytes of a note key (the first byte of what the key
// hash covers). algEd25519 is sumdb/note's own, so an Ed25519 checkpoint
// also verifies with note.NewVerifier; algECDSAP256 is this package's.
const (
	algEd25519   = 0x01 // key: the 32-byte public key; signature: Ed25519 of the text
	algECDSAP256 = 0xC1 // key: PKIX DER; signature: ASN.1 ECDSA over SHA-256 of the text
)

// noteKey is a note.Signer or note.Verifier for one key.
type noteKey struct {
	name   string
	hash   uint32
	sign   func(msg []byte) ([]byte, error)
	verify func(msg, sig []byte) bool
}

func (k *noteKey) Name() string                    { return k.name }
func (k *noteKey) KeyHash() uint32                 { return k.hash }
func (k *noteKey) Sign(msg []byte) ([]byte, error) { return k.sign(msg) }
func (k *noteKey) Verify(msg, sig []byte) bool     { return k.verify(msg, sig) }

// keyHash is sumdb/note's key hash: the first 4 bytes, big-endian, of
// SHA-256(name + "\n" + alg + key).
func keyHash(name string, alg byte, key []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write([]byte{alg})
	h.Write(key)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// validSigner reports whether name can name a note's signer: non-empty
// UTF-8 with no space and no '+' (sumdb/note's rule).
func validSigner(name string) error {
	if name == "" || !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsSpace) >= 0 || strings.Contains(name, "+") {
		return fmt.Errorf("%w: signer name %q: want a node ID (no space or '+')", ErrBadSignature, clip(name))
	}
	return nil
}

// encodeKey returns the algorithm byte and key encoding of pub, an ECDSA
// P-256 or Ed25519 public key.
func encodeKey(pub crypto.PublicKey) (byte, []byte, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return 0, nil, fmt.Errorf("%w: Ed25519 public key of %d bytes", ErrBadSignature, len(k))
		}
		return algEd25519, []byte(k), nil
	case *ecdsa.PublicKey:
		if k == nil || k.Curve != elliptic.P256() {
			return 0, nil, fmt.Errorf("%w: ECDSA key not on P-256", ErrBadSignature)
		}
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return 0, nil, fmt.Errorf("%w: ECDSA key: %w", ErrBadSignature, err)
		}
		return algECDSAP256, der, nil
	case nil:
		return 0, nil, fmt.Errorf("%w: no public key", ErrBadSignature)
	}
	return 0, nil, fmt.Errorf("%w: public key of type %T (want ECDSA P-256 or Ed25519)", ErrBadSignature, pub)
}

// newNoteSigner is a note.Signer named name that signs with key.
func newNoteSigner(name string, key crypto.Signer) (note.Signer, error) {
	if err := validSigner(name); err != nil {
		return nil, err
	}
	if key == nil {
		return nil, fmt.Errorf("%w: no signing key", ErrBadSignature)
	}
	alg, enc, err := encodeKey(key.Public())
	if err != nil {
		return nil, err
	}
	k := &noteKey{name: name, hash: keyHash(name, alg, enc)}
	if alg == algEd25519 {
		k.sign = func(msg []byte) ([]byte, error) { return key.Sign(nil, msg, crypto.Hash(0)) }
	} else {
		k.sign = func(msg []byte) ([]byte, error) {
			d := sha256.Sum256(msg)
			return key.Sign(rand.Reader, d[:], crypto.SHA256)
		}
	}
	return k, nil
}

// newNoteVerifier is a note.Verifier for name's public key pub.
func newNoteVerifier(name string, pub crypto.PublicKey) (note.Verifier, error) {
	if err := validSigner(name); err != nil {
		return nil, err
	}
	alg, enc, err := encodeKey(pub)
	if err != nil {
		return nil, err
	}
	k := &noteKey{name: name, hash: keyHash(name, alg, enc)}
	if alg == algEd25519 {
		ek := pub.(ed25519.PublicKey)
		k.verify = func(msg, sig []byte) bool { return ed25519.Verify(ek, msg, sig) }
	} else {
		ek := pub.(*ecdsa.PublicKey)
		k.verify = func(msg, sig []byte) bool {
			d := sha256.Sum256(msg)
			return ecdsa.VerifyASN1(ek, d[:], sig)
		}
	}
	return k, nil
}

// maxQuoted is the longest value quoted in an error message.
const maxQuoted = 64

// clip shortens s for quoting in an error message.
func clip(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	return s[:maxQuoted] + "..."
}
