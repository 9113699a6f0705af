package raftfsm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
	"github.com/klauspost/compress/zstd"
)

// Snapshot stream format, versions 1 and 2.
//
// Header, uncompressed (37 bytes):
//
//	magic          8 bytes "CLVRSNAP"
//	version        1 byte (1 or 2)
//	shard          8 bytes big-endian
//	applied index  8 bytes big-endian
//	applied term   8 bytes big-endian
//	crc            4 bytes little-endian, CRC-32C of the 33 bytes before
//
// then one zstd stream (with frame checksums) holding:
//
//	records, each: tag 0x01 | uvarint klen | key | uvarint vlen | stored value
//	               (stored value = version 8 bytes BE + value)
//	version 2 only, after them, audit records in key order, each:
//	               tag 0x03 | uvarint klen | audit key | uvarint vlen | record
//	               (audit key = the stored key after the kind byte, record =
//	               the stored value with its CRC; see audit.go)
//	trailer:       tag 0x02 | record count (of both tags) 8 bytes BE |
//	               CRC-32C (4 bytes LE) of every record byte
//
// and nothing after it. A shard with no audit stream and no salt is written
// as version 1, which nodes that predate audit streams restore.
const (
	snapMagic          = "CLVRSNAP"
	snapV1        byte = 1
	snapV2        byte = 2
	snapHeadLen        = 8 + 1 + 8 + 8 + 8 + 4
	tagRecord     byte = 0x01
	tagTrailer    byte = 0x02
	tagAudit      byte = 0x03
	trailerLen         = 8 + 4
	zstdWindow         = 1 << 20
	maxZstdWindow      = 8 << 20
	streamBuf          = 64 << 10
)

type snapHeader struct {
	version            byte
	shard, index, term uint64
}

func (h snapHeader) append(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, snapMagic...)
	dst = append(dst, h.version)
	dst = binary.BigEndian.AppendUint64(dst, h.shard)
	dst = binary.BigEndian.AppendUint64(dst, h.index)
	dst = binary.BigEndian.AppendUint64(dst, h.term)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// readSnapHeader reads and validates the header of a snapshot stream.
func readSnapHeader(r io.Reader, src *trackingReader) (snapHeader, error) {
	var b [snapHeadLen]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return snapHeader{}, streamErr(src, "header", err)
	}
	if string(b[:8]) != snapMagic {
		return snapHeader{}, corruptf("snapshot: bad magic")
	}
	if crc32.Checksum(b[:snapHeadLen-4], castagnoli) != binary.LittleEndian.Uint32(b[snapHeadLen-4:]) {
		return snapHeader{}, corruptf("snapshot: header checksum mismatch")
	}
	if b[8] != snapV1 && b[8] != snapV2 {
		return snapHeader{}, corruptf("snapshot: unknown format version %d", b[8])
	}
	return snapHeader{
		version: b[8],
		shard:   binary.BigEndian.Uint64(b[9:]),
		index:   binary.BigEndian.Uint64(b[17:]),
		term:    binary.BigEndian.Uint64(b[25:]),
	}, nil
}

// Snapshot makes all state applied so far durable (a synced empty WAL
// write), then captures a Pebble snapshot and the applied index it holds.
// It is quick; Persist does the I/O and may run concurrently with Apply.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.Err(); err != nil {
		return nil, err
	}
	if err := f.db.LogData(nil, pebble.Sync); err != nil {
		return nil, fmt.Errorf("raftfsm: shard %d: sync before snapshot: %w", f.shard, err)
	}
	snap := f.db.NewSnapshot()
	index, term, err := readApplied(snap, f.appliedKey)
	if err != nil {
		_ = snap.Close()
		return nil, fmt.Errorf("raftfsm: shard %d: snapshot: %w", f.shard, err)
	}
	size, salt, err := readAuditState(snap, f.shard)
	if err != nil {
		_ = snap.Close()
		return nil, fmt.Errorf("raftfsm: shard %d: snapshot: %w", f.shard, err)
	}
	version := snapV1
	if size > 0 || salt != nil {
		version = snapV2
	}
	return &fsmSnapshot{
		snap:       snap,
		head:       snapHeader{version: version, shard: f.shard, index: index, term: term},
		start:      f.dataStart,
		end:        f.dataEnd,
		auditStart: f.auditStart,
		auditEnd:   f.auditEnd,
	}, nil
}

type fsmSnapshot struct {
	snap                 *pebble.Snapshot
	head                 snapHeader
	start, end           []byte
	auditStart, auditEnd []byte
	once                 sync.Once
}

// Persist streams the shard's data and audit stream into sink and closes it, or cancels it
// on error.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.write(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("raftfsm: shard %d: persist snapshot: %w", s.head.shard, err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("raftfsm: shard %d: close snapshot sink: %w", s.head.shard, err)
	}
	return nil
}

// Release closes the Pebble snapshot. It is safe to call more than once.
func (s *fsmSnapshot) Release() {
	s.once.Do(func() { _ = s.snap.Close() })
}

func (s *fsmSnapshot) write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, streamBuf)
	if _, err := bw.Write(s.head.append(nil)); err != nil {
		return err
	}
	zw, err := zstd.NewWriter(bw,
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(zstdWindow))
	if err != nil {
		return err
	}
	defer zw.Close()
	if err := s.writeRecords(zw); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// recordWriter writes the records of a snapshot stream and tallies them for
// the trailer.
type recordWriter struct {
	w     io.Writer
	crc   uint32
	count uint64
	buf   []byte
}

func (s *fsmSnapshot) writeRecords(w io.Writer) error {
	rw := &recordWriter{w: w}
	err := rw.span(s.snap, s.start, s.end, tagRecord, func(_, v []byte) error {
		if len(v) < versionLen {
			return corruptf("stored record of %d bytes", len(v))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if s.head.version == snapV2 {
		var tally auditTally
		if err := rw.span(s.snap, s.auditStart, s.auditEnd, tagAudit, tally.add); err != nil {
			return err
		}
		if err := tally.check(); err != nil {
			return err
		}
	}
	buf := append(rw.buf[:0], tagTrailer)
	buf = binary.BigEndian.AppendUint64(buf, rw.count)
	buf = binary.LittleEndian.AppendUint32(buf, rw.crc)
	_, err = w.Write(buf)
	return err
}

// span writes every record in [start, end) with tag, after check accepts
// it (key after the kind byte, stored value).
func (rw *recordWriter) span(snap *pebble.Snapshot, start, end []byte, tag byte, check func(k, v []byte) error) error {
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return storageErr(err)
		}
		k := it.Key()[kindPrefixLen:]
		if err := check(k, v); err != nil {
			return err
		}
		rw.buf = appendRecord(rw.buf[:0], tag, k, v)
		rw.crc = crc32.Update(rw.crc, castagnoli, rw.buf)
		rw.count++
		if _, err := rw.w.Write(rw.buf); err != nil {
			return err
		}
	}
	return storageErr(it.Error())
}

func appendRecord(dst []byte, tag byte, key, stored []byte) []byte {
	dst = append(dst, tag)
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	dst = binary.AppendUvarint(dst, uint64(len(stored)))
	return append(dst, stored...)
}

// Restore replaces the shard's data, audit stream and applied index with the
// snapshot's. A version 1 snapshot holds no audit stream: the shard's is
// removed.
//
// It calls Options.Guard first. It then reads and validates the whole
// stream (magic, version, shard id, checksums, trailer, no trailing bytes,
// audit records that form exactly the tree of their recorded size) while
// building one Pebble batch that deletes the shard's data and audit spans,
// writes every record and the applied index; the batch is committed
// (synced) only if everything validated. A refused, corrupt, truncated or oversized
// snapshot leaves state untouched. Errors from a bad stream wrap ErrCorrupt.
//
// The batch lives in memory until commit: about the shard's data size plus
// a few bytes per record, bounded by Options.MaxRestoreBytes. A shard of a
// few hundred MB restores fine this way. Restore does not close rc.
func (f *FSM) Restore(rc io.ReadCloser) error {
	if f.opts.Guard != nil {
		if err := f.opts.Guard(); err != nil {
			return fmt.Errorf("%w: shard %d: %w", ErrRestoreRefused, f.shard, err)
		}
	}
	if err := f.Err(); err != nil {
		return err
	}
	var (
		head  snapHeader
		audit auditTally
	)
	if err := f.restore(rc, &head, &audit); err != nil {
		return fmt.Errorf("raftfsm: shard %d: restore: %w", f.shard, err)
	}
	f.setAuditState(audit.size, audit.salt)
	f.appliedTerm.Store(head.term)
	f.applied.Store(head.index)
	if f.opts.OnApply != nil {
		f.opts.OnApply(head.index, nil)
	}
	return nil
}

// restore reads the stream into one batch and commits it; it fills headp
// and audit with what it read.
func (f *FSM) restore(rc io.Reader, headp *snapHeader, audit *auditTally) error {
	src := &trackingReader{r: rc}
	br := bufio.NewReaderSize(src, streamBuf)
	head, err := readSnapHeader(br, src)
	if err != nil {
		return err
	}
	*headp = head
	if head.shard != f.shard {
		return corruptf("snapshot: of shard %d", head.shard)
	}
	zr, err := zstd.NewReader(br,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(maxZstdWindow))
	if err != nil {
		return err
	}
	defer zr.Close()
	r := bufio.NewReaderSize(zr, streamBuf)

	b := f.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(f.dataStart, f.dataEnd, nil); err != nil {
		return err
	}
	if err := b.DeleteRange(f.auditStart, f.auditEnd, nil); err != nil {
		return err
	}
	if err := f.readRecords(r, src, b, head.version, audit); err != nil {
		return err
	}
	if err := audit.check(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := expectEOF(r, src, "compressed stream"); err != nil {
		return err
	}
	if err := expectEOF(br, src, "snapshot stream"); err != nil {
		return err
	}
	var rec [appliedRecordLen]byte
	if err := b.Set(f.appliedKey, encodeApplied(rec[:0], head.index, head.term), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	return nil
}

// readRecords adds every record to b, up to and including the trailer,
// and checks the trailer's count and checksum. Audit records (version 2
// only) must follow the data records, in key order; audit tallies them.
func (f *FSM) readRecords(r *bufio.Reader, src *trackingReader, b *pebble.Batch, version byte, audit *auditTally) error {
	var (
		crc        uint32
		count      uint64
		k, v, dkey []byte
		lens       [binary.MaxVarintLen64]byte
		inAudit    bool
	)
	for {
		tag, err := r.ReadByte()
		if err != nil {
			return streamErr(src, "record tag", err)
		}
		switch {
		case tag == tagRecord && !inAudit:
		case tag == tagAudit && version == snapV2:
			inAudit = true
		case tag == tagTrailer:
			return readTrailer(r, src, count, crc)
		case tag == tagRecord:
			return corruptf("snapshot: data record after audit records")
		default:
			return corruptf("snapshot: unknown tag %#x", tag)
		}
		if inAudit {
			if k, err = readField(r, src, k, 1, 9); err != nil {
				return err
			}
			if v, err = readField(r, src, v, crcLen, MaxAuditLeafSize+crcLen); err != nil {
				return err
			}
			if err := audit.add(k, v); err != nil {
				return fmt.Errorf("snapshot: %w", err)
			}
		} else {
			if k, err = readField(r, src, k, 1, MaxKeySize); err != nil {
				return err
			}
			if v, err = readField(r, src, v, versionLen, versionLen+MaxValueSize); err != nil {
				return err
			}
		}
		crc = crc32.Update(crc, castagnoli, []byte{tag})
		crc = crc32.Update(crc, castagnoli, lens[:binary.PutUvarint(lens[:], uint64(len(k)))])
		crc = crc32.Update(crc, castagnoli, k)
		crc = crc32.Update(crc, castagnoli, lens[:binary.PutUvarint(lens[:], uint64(len(v)))])
		crc = crc32.Update(crc, castagnoli, v)
		count++
		if inAudit {
			dkey = append(appendShardPrefix(dkey[:0], f.shard), kindAudit)
			dkey = append(dkey, k...)
		} else {
			dkey = AppendDataKey(dkey[:0], f.shard, k)
		}
		if err := b.Set(dkey, v, nil); err != nil {
			return err
		}
		if int64(b.Len()) > f.opts.MaxRestoreBytes {
			return fmt.Errorf("%w: more than %d bytes", ErrSnapshotTooLarge, f.opts.MaxRestoreBytes)
		}
	}
}

// readField reads one length-prefixed field into buf (reused). Its length
// must be in [lo, hi].
func readField(r *bufio.Reader, src *trackingReader, buf []byte, lo, hi int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return buf, streamErr(src, "field length", err)
	}
	if n < uint64(lo) || n > uint64(hi) {
		return buf, corruptf("snapshot: field length %d not in [%d, %d]", n, lo, hi)
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return buf, streamErr(src, "field", err)
	}
	return buf, nil
}

func readTrailer(r *bufio.Reader, src *trackingReader, count uint64, crc uint32) error {
	var t [trailerLen]byte
	if _, err := io.ReadFull(r, t[:]); err != nil {
		return streamErr(src, "trailer", err)
	}
	if got := binary.BigEndian.Uint64(t[:8]); got != count {
		return corruptf("snapshot: trailer says %d records, read %d", got, count)
	}
	if binary.LittleEndian.Uint32(t[8:]) != crc {
		return corruptf("snapshot: records checksum mismatch")
	}
	return nil
}

// expectEOF checks that r has nothing left.
func expectEOF(r *bufio.Reader, src *trackingReader, what string) error {
	_, err := r.ReadByte()
	switch {
	case err == nil:
		return corruptf("snapshot: trailing bytes after %s", what)
	case errors.Is(err, io.EOF):
		return nil
	default:
		return streamErr(src, what, err)
	}
}

// trackingReader remembers the first error, other than io.EOF, of the
// underlying snapshot source, so that a failing source is reported as an
// I/O error and anything else as corruption.
type trackingReader struct {
	r   io.Reader
	err error
}

func (t *trackingReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && t.err == nil {
		t.err = err
	}
	return n, err
}

func streamErr(src *trackingReader, what string, err error) error {
	if src != nil && src.err != nil {
		return fmt.Errorf("snapshot: reading %s: %w", what, src.err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return corruptf("snapshot: truncated %s", what)
	}
	return fmt.Errorf("%w: snapshot: %s: %w", ErrCorrupt, what, err)
}

// NeedsRestore reports whether the newest snapshot in snaps holds state the
// FSM does not: its applied index is above the FSM's. Raft writes a
// snapshot received from the leader to its store before it calls Restore,
// so a crash in between leaves a snapshot the FSM never restored, and the
// local log lacks the entries it covers (that is why it was sent). Start
// raft with NoSnapshotRestoreOnStart = !needsRestore so that raft restores
// the snapshot exactly when the FSM is behind it.
func (f *FSM) NeedsRestore(snaps raft.SnapshotStore) (bool, error) {
	metas, err := snaps.List()
	if err != nil {
		return false, fmt.Errorf("raftfsm: shard %d: list snapshots: %w", f.shard, err)
	}
	if len(metas) == 0 {
		return false, nil
	}
	_, rc, err := snaps.Open(metas[0].ID)
	if err != nil {
		// raft's FileSnapshotStore checks the file's CRC-64 as it opens it:
		// a snapshot that cannot be opened is one this replica cannot use.
		return false, fmt.Errorf("raftfsm: shard %d: %w: snapshot %s cannot be read: %w", f.shard, ErrCorrupt, metas[0].ID, err)
	}
	defer rc.Close()
	src := &trackingReader{r: rc}
	head, err := readSnapHeader(src, src)
	if err != nil {
		return false, fmt.Errorf("raftfsm: shard %d: %w", f.shard, err)
	}
	if head.shard != f.shard {
		return false, fmt.Errorf("raftfsm: shard %d: %w", f.shard, corruptf("snapshot: of shard %d", head.shard))
	}
	return head.index > f.AppliedIndex(), nil
}
