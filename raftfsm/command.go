package raftfsm

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// OpKind is the kind of one write.
type OpKind uint8

// Op kinds. Other values are rejected at apply time with ErrInvalidCommand.
const (
	OpPut    OpKind = 1
	OpDelete OpKind = 2
)

// Limits checked by Command.Validate and, deterministically, at apply time.
// Snapshots never hold a record larger than these, which bounds what a
// restore allocates for one record.
const (
	MaxKeySize   = 64 << 10
	MaxValueSize = 16 << 20

	// MaxAuditLeafSize bounds Command.Audit.
	MaxAuditLeafSize = 64 << 10
	// AuditSaltSize is the exact length of Command.AuditSalt.
	AuditSaltSize = 32
)

// Op is one write of a Command.
type Op struct {
	Kind  OpKind
	Key   []byte
	Value []byte // OpPut only; must be empty for OpDelete

	// If HasCond, the op applies only if the key's current version equals
	// CondVersion; CondVersion 0 means "the key must not exist".
	HasCond     bool
	CondVersion uint64
}

// Command is a set of ops that apply atomically: all or none. A failed
// condition on any op fails the whole command.
//
// Conditions are evaluated against the state before the command; a key may
// appear at most once in a command.
//
// A command may also carry one leaf for the shard's audit stream (Audit)
// and the shard's audit salt (AuditSalt); see FSM.ApplyBatch for how they
// apply. A command with neither ops nor audit fields is a barrier.
type Command struct {
	Ops []Op

	// Audit, if not empty, is one leaf appended to the shard's audit
	// stream, 1 to MaxAuditLeafSize bytes. The bytes are opaque to this
	// package. The leaf is appended even if the ops fail: it records what
	// was asked. Empty means none.
	Audit []byte

	// AuditSalt, if not empty, sets the shard's audit salt: exactly
	// AuditSaltSize bytes. It takes effect only if the shard has no salt
	// yet; a later salt is ignored (not an error), so every replica keeps
	// the first. Empty means none.
	AuditSalt []byte
}

// Validate reports whether c can ever apply. Proposers call it before
// proposing; apply makes the same check and fails an invalid command with
// ErrInvalidCommand (writing nothing) instead of halting.
func (c Command) Validate() error {
	if err := c.validateAudit(); err != nil {
		return err
	}
	return c.validateOps()
}

// validateAudit checks the audit fields. At apply, a command failing it
// writes nothing and appends nothing.
func (c Command) validateAudit() error {
	if len(c.Audit) > MaxAuditLeafSize {
		return fmt.Errorf("%w: audit leaf of %d bytes exceeds %d", ErrInvalidCommand, len(c.Audit), MaxAuditLeafSize)
	}
	if len(c.AuditSalt) != 0 && len(c.AuditSalt) != AuditSaltSize {
		return fmt.Errorf("%w: audit salt of %d bytes, want %d", ErrInvalidCommand, len(c.AuditSalt), AuditSaltSize)
	}
	return nil
}

// hasAudit reports whether c carries an audit field.
func (c Command) hasAudit() bool { return len(c.Audit) != 0 || len(c.AuditSalt) != 0 }

// validateOps checks the ops. At apply, a command failing it writes no op
// but still appends its audit leaf.
func (c Command) validateOps() error {
	for i, op := range c.Ops {
		switch op.Kind {
		case OpPut:
			if len(op.Value) > MaxValueSize {
				return fmt.Errorf("%w: op %d: value of %d bytes exceeds %d", ErrInvalidCommand, i, len(op.Value), MaxValueSize)
			}
		case OpDelete:
			if len(op.Value) != 0 {
				return fmt.Errorf("%w: op %d: delete carries a value", ErrInvalidCommand, i)
			}
		default:
			return fmt.Errorf("%w: op %d: unknown kind %d", ErrInvalidCommand, i, op.Kind)
		}
		if len(op.Key) == 0 || len(op.Key) > MaxKeySize {
			return fmt.Errorf("%w: op %d: key length %d not in [1, %d]", ErrInvalidCommand, i, len(op.Key), MaxKeySize)
		}
	}
	if dup, j := duplicateKey(c.Ops); dup >= 0 {
		return fmt.Errorf("%w: ops %d and %d write the same key", ErrInvalidCommand, dup, j)
	}
	return nil
}

// duplicateKey returns the positions of two ops with the same key, or -1.
func duplicateKey(ops []Op) (int, int) {
	if len(ops) <= 16 {
		for i := range ops {
			for j := i + 1; j < len(ops); j++ {
				if string(ops[i].Key) == string(ops[j].Key) {
					return i, j
				}
			}
		}
		return -1, -1
	}
	seen := make(map[string]int, len(ops))
	for j, op := range ops {
		if i, ok := seen[string(op.Key)]; ok {
			return i, j
		}
		seen[string(op.Key)] = j
	}
	return -1, -1
}

// Entry wire format, version 1:
//
//	version  byte (1)
//	ncmds    uvarint
//	per command:
//	  nops   uvarint
//	  per op:
//	    kind   byte
//	    flags  byte (bit 0: HasCond; other bits must be 0)
//	    cond   uvarint CondVersion, present only if HasCond
//	    klen   uvarint, key bytes
//	    vlen   uvarint, value bytes
//	crc      4 bytes little-endian, CRC-32C of every byte before it
//
// Version 2 is the same with version byte 2 and, after each command's ops:
//
//	alen   uvarint, audit leaf bytes (0: none)
//	slen   uvarint, audit salt bytes (0: none)
//
// EncodeEntry writes version 2 only if some command has an audit field, and
// version 1 otherwise; DecodeEntry refuses a version 2 entry in which no
// command has one. So varints are minimal, each entry has one encoding, and
// the encoding of a decoded entry is byte-identical to its input.
const (
	entryV1       byte = 1
	entryV2       byte = 2
	flagCond      byte = 1 << 0
	crcLen             = 4
	minOpEncoding      = 4 // kind, flags, klen, vlen
	minCmdV1           = 1 // nops
	minCmdV2           = 3 // nops, alen, slen
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// EncodeEntry appends the encoding of cmds to dst and returns the extended
// slice. It does not validate the commands (see Command.Validate).
func EncodeEntry(dst []byte, cmds []Command) []byte {
	start := len(dst)
	version := entryV1
	for _, c := range cmds {
		if c.hasAudit() {
			version = entryV2
			break
		}
	}
	dst = append(dst, version)
	dst = binary.AppendUvarint(dst, uint64(len(cmds)))
	for _, c := range cmds {
		dst = binary.AppendUvarint(dst, uint64(len(c.Ops)))
		for _, op := range c.Ops {
			var flags byte
			if op.HasCond {
				flags |= flagCond
			}
			dst = append(dst, byte(op.Kind), flags)
			if op.HasCond {
				dst = binary.AppendUvarint(dst, op.CondVersion)
			}
			dst = binary.AppendUvarint(dst, uint64(len(op.Key)))
			dst = append(dst, op.Key...)
			dst = binary.AppendUvarint(dst, uint64(len(op.Value)))
			dst = append(dst, op.Value...)
		}
		if version == entryV2 {
			dst = binary.AppendUvarint(dst, uint64(len(c.Audit)))
			dst = append(dst, c.Audit...)
			dst = binary.AppendUvarint(dst, uint64(len(c.AuditSalt)))
			dst = append(dst, c.AuditSalt...)
		}
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// DecodeEntry decodes an entry made by EncodeEntry. It is strict: a bad
// checksum, unknown version or flag, non-minimal varint, length beyond the
// input, or trailing bytes returns an error wrapping ErrCorrupt.
//
// Keys, values and audit fields of the result alias b; empty ones are nil.
// The caller must not modify b while it uses the result. DecodeEntry does
// not validate the commands: apply does (see Command.Validate).
func DecodeEntry(b []byte) ([]Command, error) {
	if len(b) < 1+1+crcLen {
		return nil, corruptf("entry of %d bytes is too short", len(b))
	}
	version := b[0]
	if version != entryV1 && version != entryV2 {
		return nil, corruptf("unknown entry format version %d", version)
	}
	minCmd := minCmdV1
	if version == entryV2 {
		minCmd = minCmdV2
	}
	body, sum := b[:len(b)-crcLen], binary.LittleEndian.Uint32(b[len(b)-crcLen:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, corruptf("entry checksum mismatch")
	}
	d := decoder{b: body, off: 1}
	ncmds, err := d.count(minCmd)
	if err != nil {
		return nil, err
	}
	cmds := make([]Command, ncmds)
	audited := false
	for i := range cmds {
		nops, err := d.count(minOpEncoding)
		if err != nil {
			return nil, err
		}
		if nops > 0 {
			cmds[i].Ops = make([]Op, nops)
		}
		for j := range cmds[i].Ops {
			if err := d.op(&cmds[i].Ops[j]); err != nil {
				return nil, err
			}
		}
		if version == entryV2 {
			if cmds[i].Audit, err = d.bytes(); err != nil {
				return nil, err
			}
			if cmds[i].AuditSalt, err = d.bytes(); err != nil {
				return nil, err
			}
			audited = audited || cmds[i].hasAudit()
		}
	}
	if version == entryV2 && !audited {
		return nil, corruptf("version 2 entry without an audit field")
	}
	if d.off != len(d.b) {
		return nil, corruptf("%d trailing bytes after entry", len(d.b)-d.off)
	}
	return cmds, nil
}

type decoder struct {
	b   []byte
	off int
}

func (d *decoder) uvarint() (uint64, error) {
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		return 0, corruptf("bad varint at offset %d", d.off)
	}
	if n > 1 && d.b[d.off+n-1] == 0 {
		return 0, corruptf("non-minimal varint at offset %d", d.off)
	}
	d.off += n
	return v, nil
}

// count reads an element count and rejects one that cannot fit in the
// remaining input given the minimum encoded size of one element.
func (d *decoder) count(minSize int) (int, error) {
	v, err := d.uvarint()
	if err != nil {
		return 0, err
	}
	if v > uint64((len(d.b)-d.off)/minSize) {
		return 0, corruptf("count %d exceeds remaining input at offset %d", v, d.off)
	}
	return int(v), nil
}

func (d *decoder) bytes() ([]byte, error) {
	n, err := d.uvarint()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(d.b)-d.off) {
		return nil, corruptf("length %d exceeds remaining input at offset %d", n, d.off)
	}
	if n == 0 {
		return nil, nil
	}
	v := d.b[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return v, nil
}

func (d *decoder) op(op *Op) error {
	if len(d.b)-d.off < 2 {
		return corruptf("truncated op at offset %d", d.off)
	}
	op.Kind = OpKind(d.b[d.off])
	flags := d.b[d.off+1]
	d.off += 2
	if flags&^flagCond != 0 {
		return corruptf("unknown op flags %#x", flags)
	}
	var err error
	if flags&flagCond != 0 {
		op.HasCond = true
		if op.CondVersion, err = d.uvarint(); err != nil {
			return err
		}
	}
	if op.Key, err = d.bytes(); err != nil {
		return err
	}
	op.Value, err = d.bytes()
	return err
}
