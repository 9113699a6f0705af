package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	cloverv1 "github.com/clover-kv/clover/api/cloverv1"
)

// SaltSize is the length in bytes of a keyspace's audit salt, the HMAC key
// KeyHMAC hashes request keys with.
const SaltSize = 32

// maxLeaf is the longest leaf DecodeEntry reads. An entry holds a few
// names, a hash and a locality: a few hundred bytes.
const maxLeaf = 64 << 10

// EncodeEntry returns the leaf bytes of e, the deterministic protobuf
// encoding (proto.MarshalOptions{Deterministic: true}) that the tree
// hashes. It refuses nil and an entry carrying fields this build does not
// know (which DecodeEntry would refuse), so every leaf it makes decodes.
// Errors wrap ErrBadEntry.
func EncodeEntry(e *cloverv1.AuditEntry) ([]byte, error) {
	if e == nil {
		return nil, fmt.Errorf("%w: nil entry", ErrBadEntry)
	}
	if err := checkUnknown(e.ProtoReflect()); err != nil {
		return nil, err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("%w: encode: %w", ErrBadEntry, err)
	}
	return b, nil
}

// DecodeEntry parses a leaf made by EncodeEntry. It is strict: bytes that
// are not protobuf, a leaf longer than 64 KiB, and fields unknown to this
// build (at any depth) are errors wrapping ErrBadEntry. The empty leaf is
// the empty entry.
func DecodeEntry(leaf []byte) (*cloverv1.AuditEntry, error) {
	if len(leaf) > maxLeaf {
		return nil, fmt.Errorf("%w: leaf of %d bytes (at most %d)", ErrBadEntry, len(leaf), maxLeaf)
	}
	e := new(cloverv1.AuditEntry)
	if err := proto.Unmarshal(leaf, e); err != nil {
		return nil, fmt.Errorf("%w: leaf does not decode: %w", ErrBadEntry, err)
	}
	if err := checkUnknown(e.ProtoReflect()); err != nil {
		return nil, err
	}
	return e, nil
}

// checkUnknown refuses a message that has unknown fields, itself or in any
// message it holds.
func checkUnknown(m protoreflect.Message) error {
	if n := len(m.GetUnknown()); n > 0 {
		return fmt.Errorf("%w: %s has %d bytes of unknown fields", ErrBadEntry, m.Descriptor().Name(), n)
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					err = checkUnknown(mv.Message())
					return err == nil
				})
			}
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				err = checkUnknown(l.Get(i).Message())
			}
		case fd.Message() != nil:
			err = checkUnknown(v.Message())
		}
		return err == nil
	})
	return err
}

// KeyHMAC returns HMAC-SHA256(salt, key), what an entry records of a
// request's key (AuditEntry.key_hmac): equal keys of one keyspace match,
// and the key cannot be read back without the keyspace's salt. salt must
// be SaltSize bytes and key non-empty; anything else is a programming
// error, returned as an error wrapping ErrBadEntry.
func KeyHMAC(salt, key []byte) ([]byte, error) {
	if len(salt) != SaltSize {
		return nil, fmt.Errorf("%w: salt of %d bytes (want %d)", ErrBadEntry, len(salt), SaltSize)
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: empty key", ErrBadEntry)
	}
	m := hmac.New(sha256.New, salt)
	m.Write(key)
	return m.Sum(nil), nil
}
