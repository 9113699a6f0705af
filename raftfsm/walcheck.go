package raftfsm

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Pebble replays its write-ahead log up to the first chunk that fails its
// checksum and treats the rest as a torn tail: a flipped bit in the middle
// of the log would silently drop every later record, synced ones included.
// Pebble itself catches that only when a later 32 KiB block carries a
// "synced offset" beyond the damage. checkWALs makes the same argument over
// the whole file, the rest of the damaged block included: if any valid chunk
// after a bad one records that the log had been synced past the bad chunk,
// the bad chunk held synced data, and opening would lose it.
//
// The chunk layout is Pebble's record format (github.com/cockroachdb/pebble
// record package): 32 KiB blocks of chunks that never straddle a block, each
// chunk a header (masked CRC-32C, length, encoding, log number, and in the
// "WAL sync" encodings the synced offset) followed by its payload. WALs
// written before the store's format carried synced offsets cannot be judged
// and are left to Pebble; OpenDB rotates the WAL on open so the live one
// always can.
const (
	walBlockSize       = 32 << 10
	walLegacyHeader    = 7
	walRecyclableHdr   = 11
	walSyncHeader      = 19
	walEncRecyclable   = 5 // 5-8: recyclable full/first/middle/last
	walEncSyncFirst    = 9 // 9-12: WAL sync full/first/middle/last
	walEncSyncLast     = 12
	walChecksumMaskAdd = 0xa282ead8
)

var walCRCTable = crc32.MakeTable(crc32.Castagnoli)

func walChecksum(b []byte) uint32 {
	c := crc32.Update(0, walCRCTable, b)
	return (c>>15 | c<<17) + walChecksumMaskAdd
}

// WALDamageError reports a write-ahead log damaged before its synced end.
type WALDamageError struct {
	File   string
	Offset int64 // first damaged chunk
	Synced int64 // a later chunk's synced offset, beyond Offset
}

func (e *WALDamageError) Error() string {
	return fmt.Sprintf("%v: write-ahead log %s is damaged at offset %d, but a later record says it was synced up to %d: "+
		"opening would silently drop synced writes", ErrCorrupt, e.File, e.Offset, e.Synced)
}

// Unwrap returns ErrCorrupt.
func (e *WALDamageError) Unwrap() error { return ErrCorrupt }

// checkWALs checks every write-ahead log in dir (see above).
func checkWALs(fs vfs.FS, dir string) error {
	names, err := fs.List(dir)
	if err != nil {
		return nil // a new store: nothing to check (Open reports real I/O errors)
	}
	for _, name := range names {
		num, ok := walNumber(name)
		if !ok {
			continue
		}
		path := fs.PathJoin(dir, name)
		f, err := fs.Open(path)
		if err != nil {
			return fmt.Errorf("raftfsm: open write-ahead log %s: %w", path, err)
		}
		b, err := io.ReadAll(f)
		_ = f.Close()
		if err != nil {
			return fmt.Errorf("raftfsm: read write-ahead log %s: %w", path, err)
		}
		if bad, synced, damaged := walDamage(b, num); damaged {
			return &WALDamageError{File: path, Offset: bad, Synced: synced}
		}
	}
	return nil
}

// walNumber parses a WAL file name: "000012.log" or a failover segment
// "000012-001.log".
func walNumber(name string) (uint32, bool) {
	base, ok := strings.CutSuffix(name, ".log")
	if !ok {
		return 0, false
	}
	base, _, _ = strings.Cut(base, "-")
	n, err := strconv.ParseUint(base, 10, 32)
	return uint32(n), err == nil
}

// walDamage scans one WAL file's bytes. It reports the offset of the first
// invalid chunk when a later valid chunk's synced offset lies beyond it.
func walDamage(b []byte, logNum uint32) (bad, synced int64, damaged bool) {
	firstBad := int64(-1)
	// lastNonZero of the block holding pos, cached per block.
	zeroBlock, lastNonZero := -1, 0
	zeroFrom := func(pos int) bool {
		if blk := pos / walBlockSize; blk != zeroBlock {
			zeroBlock, lastNonZero = blk, blk*walBlockSize-1
			for i := min((blk+1)*walBlockSize, len(b)) - 1; i >= blk*walBlockSize; i-- {
				if b[i] != 0 {
					lastNonZero = i
					break
				}
			}
		}
		return pos > lastNonZero
	}
	pos := 0
	for pos < len(b) {
		hdr, length, enc, ok := walChunkAt(b, pos, logNum)
		if !ok {
			blockEnd := min((pos/walBlockSize+1)*walBlockSize, len(b))
			if zeroFrom(pos) {
				pos = blockEnd // block padding, or the unwritten end of the file
				continue
			}
			if firstBad < 0 {
				firstBad = int64(pos)
			}
			pos++ // resynchronise: look for the next valid chunk
			continue
		}
		if enc >= walEncSyncFirst && enc <= walEncSyncLast && firstBad >= 0 {
			if so := int64(binary.LittleEndian.Uint64(b[pos+11 : pos+19])); so > firstBad {
				return firstBad, so, true
			}
		}
		pos += hdr + length
	}
	return 0, 0, false
}

// walChunkAt reports whether a valid chunk of logNum starts at pos, and its
// header size, payload length and encoding. Only the encodings that carry a
// log number are accepted; Pebble writes no other kind into a new WAL.
func walChunkAt(b []byte, pos int, logNum uint32) (hdr, length int, enc byte, ok bool) {
	if len(b)-pos < walRecyclableHdr {
		return 0, 0, 0, false
	}
	enc = b[pos+6]
	switch {
	case enc >= walEncRecyclable && enc < walEncSyncFirst:
		hdr = walRecyclableHdr
	case enc >= walEncSyncFirst && enc <= walEncSyncLast:
		hdr = walSyncHeader
	default:
		return 0, 0, 0, false
	}
	if binary.LittleEndian.Uint32(b[pos+7:pos+11]) != logNum {
		return 0, 0, 0, false
	}
	length = int(binary.LittleEndian.Uint16(b[pos+4 : pos+6]))
	blockEnd := (pos/walBlockSize + 1) * walBlockSize
	if pos+hdr+length > blockEnd || pos+hdr+length > len(b) {
		return 0, 0, 0, false
	}
	if walChecksum(b[pos+6:pos+hdr+length]) != binary.LittleEndian.Uint32(b[pos:pos+4]) {
		return 0, 0, 0, false
	}
	return hdr, length, enc, true
}
