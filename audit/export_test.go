package audit

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	cloverv1 "github.com/clover-kv/clover/api/cloverv1"
)

func TestExportRoundTrip(t *testing.T) {
	recs, tree := testStream(t, 12)
	recs[3].Entry = nil // decoded from the leaf
	var buf bytes.Buffer
	if err := WriteExport(&buf, recs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 12 {
		t.Fatalf("%d lines, want 12", len(lines))
	}
	h := LeafHash(recs[0].Leaf)
	for _, want := range []string{`"stream":"shard/3"`, `"shard_id":3`, `"index":0`, `"leaf":"` + base64.StdEncoding.EncodeToString(recs[0].Leaf) + `"`,
		`"leaf_hash":"` + hex.EncodeToString(h[:]) + `"`, `"caller_country":"IE"`} {
		if !strings.Contains(lines[0], want) {
			t.Fatalf("line %s lacks %s", lines[0], want)
		}
	}
	got, err := ReadExport(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var rebuilt Tree
	for i, r := range got {
		want := proto.Clone(recs[i]).(*cloverv1.AuditRecord)
		if want.Entry == nil {
			want.Entry = testEntry(i)
		}
		if !proto.Equal(r, want) {
			t.Fatalf("record %d read back as %v, want %v", i, r, want)
		}
		if err := rebuilt.Append(r.Leaf); err != nil {
			t.Fatal(err)
		}
	}
	if rebuilt.Root() != tree.Root() {
		t.Fatal("the export's leaves do not rebuild the tree")
	}
}

func TestTamperedExportRefused(t *testing.T) {
	recs, _ := testStream(t, 2)
	var buf bytes.Buffer
	if err := WriteExport(&buf, recs); err != nil {
		t.Fatal(err)
	}
	good := strings.SplitAfter(buf.String(), "\n")[0]
	other := mustLeaf(t, testEntry(5))
	oh := LeafHash(other)
	tests := map[string]string{
		"entry-changed":       strings.Replace(good, `"result":"allowed"`, `"result":"refused"`, 1),
		"entry-field-added":   strings.Replace(good, `"result":"allowed"`, `"result":"allowed","via_node":"x"`, 1),
		"entry-unknown-field": strings.Replace(good, `"result":"allowed"`, `"result":"allowed","colour":"red"`, 1),
		"leaf-changed": strings.Replace(strings.Replace(good, base64.StdEncoding.EncodeToString(recs[0].Leaf), base64.StdEncoding.EncodeToString(other), 1),
			hashHex(recs[0].Leaf), hex.EncodeToString(oh[:]), 1),
		"leaf-hash-changed": strings.Replace(good, hashHex(recs[0].Leaf), hashHex(other), 1),
		"leaf-hash-upper":   strings.Replace(good, hashHex(recs[0].Leaf), strings.ToUpper(hashHex(recs[0].Leaf)), 1),
		"leaf-not-base64":   strings.Replace(good, `"leaf":"`, `"leaf":"*`, 1),
		"unknown-field":     strings.Replace(good, `{"stream"`, `{"extra":1,"stream"`, 1),
		"missing-field":     strings.Replace(good, `"shard_id":3,`, ``, 1),
		"missing-entry":     strings.Replace(good, `"entry":`, `"entry_":`, 1),
		"trailing-garbage":  strings.TrimSuffix(good, "\n") + " {}\n",
		"not-json":          "stream shard/3\n",
		"blank-line":        good + "\n" + good,
		"null":              "null\n",
		"entry-null":        good[:strings.Index(good, `"entry":`)] + `"entry":null}` + "\n",
	}
	for name, text := range tests {
		t.Run(name, func(t *testing.T) {
			if text == good {
				t.Fatal("edit changed nothing")
			}
			if _, err := ReadExport(strings.NewReader(text)); !errors.Is(err, ErrBadExport) {
				t.Fatalf("ReadExport = %v, want ErrBadExport", err)
			}
		})
	}
	if _, err := ReadExport(strings.NewReader(good)); err != nil {
		t.Fatalf("the untampered line: %v", err)
	}
	if _, err := ReadExport(strings.NewReader(strings.Repeat("x", maxExportLine+1))); !errors.Is(err, ErrBadExport) {
		t.Fatalf("overlong line: %v", err)
	}
}

func hashHex(leaf []byte) string {
	h := LeafHash(leaf)
	return hex.EncodeToString(h[:])
}

func TestWriteExportRefuses(t *testing.T) {
	recs, _ := testStream(t, 2)
	mismatch := proto.Clone(recs[1]).(*cloverv1.AuditRecord)
	mismatch.Entry.Caller = "user:mallory"
	for name, rs := range map[string][]*cloverv1.AuditRecord{
		"nil-record":              {recs[0], nil},
		"leaf-does-not-decode":    {{Stream: "shard/3", Leaf: []byte{0xff}}},
		"entry-differs-from-leaf": {recs[0], mismatch},
	} {
		t.Run(name, func(t *testing.T) {
			if err := WriteExport(&bytes.Buffer{}, rs); !errors.Is(err, ErrBadExport) {
				t.Fatalf("WriteExport = %v, want ErrBadExport", err)
			}
		})
	}
}
