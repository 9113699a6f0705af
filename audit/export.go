package audit

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	cloverv1 "github.com/clover-kv/clover/api/cloverv1"
)

// maxExportLine is the longest line ReadExport reads: a leaf of at most
// maxLeaf bytes in base64 and its entry in JSON.
const maxExportLine = 4 * maxLeaf

// exportLine is one line of an export.
type exportLine struct {
	Stream   *string         `json:"stream"`
	ShardID  *uint64         `json:"shard_id"`
	Index    *uint64         `json:"index"`
	Leaf     *string         `json:"leaf"`
	LeafHash *string         `json:"leaf_hash"`
	Entry    json.RawMessage `json:"entry"`
}

// WriteExport writes recs as JSON Lines that a tool outside Clover can
// re-verify, one record a line:
//
//	{"stream":"shard/3","shard_id":3,"index":0,"leaf":"<base64>","leaf_hash":"<hex>","entry":{...}}
//
// leaf is the leaf bytes in standard base64, leaf_hash their RFC 6962
// hash (LeafHash) in lower-case hex, entry the decoded entry in protojson
// (field names as in the proto). Hashing the leaves in index order gives
// the roots of the stream's checkpoints. A record with a nil Entry is
// decoded from its leaf; a leaf that does not decode, or an Entry that
// differs from its leaf, is an error wrapping ErrBadExport, and so is a
// nil record.
func WriteExport(w io.Writer, recs []*cloverv1.AuditRecord) error {
	bw := bufio.NewWriter(w)
	for i, r := range recs {
		line, err := exportRecord(r)
		if err != nil {
			return fmt.Errorf("%w: record %d: %w", ErrBadExport, i, err)
		}
		bw.Write(line)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// exportRecord is r's export line, without the newline.
func exportRecord(r *cloverv1.AuditRecord) ([]byte, error) {
	if r == nil {
		return nil, errors.New("nil record")
	}
	e, err := DecodeEntry(r.Leaf)
	if err != nil {
		return nil, err
	}
	if r.Entry != nil && !proto.Equal(e, r.Entry) {
		return nil, fmt.Errorf("leaf %d does not encode the record's entry", r.Index)
	}
	ej, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(e)
	if err != nil {
		return nil, err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, ej); err != nil {
		return nil, err
	}
	leaf := base64.StdEncoding.EncodeToString(r.Leaf)
	h := LeafHash(r.Leaf)
	lh := hex.EncodeToString(h[:])
	return json.Marshal(exportLine{Stream: &r.Stream, ShardID: &r.ShardId, Index: &r.Index, Leaf: &leaf, LeafHash: &lh, Entry: compact.Bytes()})
}

// ReadExport reads what WriteExport writes, strictly: each line one JSON
// object with exactly the six fields, a leaf in standard base64 that
// decodes to an entry (DecodeEntry), a leaf_hash equal to its LeafHash in
// lower-case hex, and an entry equal to the leaf's. It does not check the
// records' order or indexes (CheckStream does). Errors wrap ErrBadExport
// and give the line number, or are r's.
func ReadExport(r io.Reader) ([]*cloverv1.AuditRecord, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxExportLine)
	var out []*cloverv1.AuditRecord
	n := 0
	for sc.Scan() {
		n++
		rec, err := parseExportLine(sc.Bytes())
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrBadExport, n, err)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%w: line %d is longer than %d bytes", ErrBadExport, n+1, maxExportLine)
		}
		return nil, err
	}
	return out, nil
}

// parseExportLine parses one line of an export.
func parseExportLine(b []byte) (*cloverv1.AuditRecord, error) {
	var l exportLine
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&l); err != nil {
		return nil, fmt.Errorf("not a JSON object of an export: %w", err)
	}
	if err := d.Decode(&struct{}{}); err != io.EOF {
		return nil, errors.New("text after the JSON object")
	}
	switch {
	case l.Stream == nil, l.ShardID == nil, l.Index == nil, l.Leaf == nil, l.LeafHash == nil, l.Entry == nil:
		return nil, errors.New("want the fields stream, shard_id, index, leaf, leaf_hash and entry")
	}
	leaf, err := base64.StdEncoding.Strict().DecodeString(*l.Leaf)
	if err != nil {
		return nil, fmt.Errorf("leaf: %w", err)
	}
	h := LeafHash(leaf)
	if *l.LeafHash != hex.EncodeToString(h[:]) {
		return nil, fmt.Errorf("leaf_hash %q is not the leaf's hash %x", clip(*l.LeafHash), h[:])
	}
	e, err := DecodeEntry(leaf)
	if err != nil {
		return nil, err
	}
	var je cloverv1.AuditEntry
	if err := protojson.Unmarshal(l.Entry, &je); err != nil {
		return nil, fmt.Errorf("entry: %w", err)
	}
	if !proto.Equal(e, &je) {
		return nil, fmt.Errorf("entry of leaf %d differs from its leaf (hash %x)", *l.Index, h[:])
	}
	return &cloverv1.AuditRecord{Stream: *l.Stream, ShardId: *l.ShardID, Index: *l.Index, Leaf: leaf, Entry: e}, nil
}
