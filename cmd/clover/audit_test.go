package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/proto"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/audit"
	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/internal/testcerts"
)

// Fixed values for the audit views, one of each shape.
var (
	goldenRecords = []*pb.AuditRecord{
		{Stream: "shard/3", ShardId: 3, Index: 41, Entry: &pb.AuditEntry{TimeUnixNano: goldenAt.UnixNano(), Caller: "user:alice",
			CallerFingerprint: "9f86d081884c7d65", CallerCountry: "IE", CallerRoles: []string{"reader"}, CallerAddr: "10.0.0.9:51234",
			Node: "ie-1", NodeLocality: &pb.Locality{Country: "IE", Region: "ie-dublin", Zone: "a"}, Operation: "get", Keyspace: "users",
			ShardId: 3, KeyHmac: bytes.Repeat([]byte{0xab, 0xcd}, 16), Keys: 1, Result: "allowed", Rule: "read-role", Consistency: "linearizable"}},
		{Stream: "shard/3", ShardId: 3, Index: 42, Entry: &pb.AuditEntry{TimeUnixNano: goldenAt.UnixNano() + 1500000, Caller: "user:esc\x1b[2J",
			CallerCountry: "US", ViaNode: "ie-2", Node: "ie-1", Operation: "batch", Keyspace: "users", ShardId: 3,
			KeyHmac: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}, MoreKeyHmacs: [][]byte{{0xff, 0xee}}, Keys: 2, Result: "refused", Rule: "caller-jurisdiction"}},
		{Stream: "admin", Index: 7, Entry: &pb.AuditEntry{TimeUnixNano: goldenAt.UnixNano() + 2000000, Caller: "user:ops", Node: "ie-1",
			Operation: "set-policy", Keyspace: "users", Result: "allowed", Rule: "admin-role", Detail: "residency EEA -> IE"}},
	}
	goldenIncidents = []*pb.AuditIncident{
		{TimeUnixNano: goldenAt.UnixNano(), Kind: "refused", Keyspace: "users", Caller: "user:mallory", CallerCountry: "US",
			Rule: "caller-jurisdiction", Operation: "get", Detail: "refused by caller-jurisdiction", Stream: "shard/3", ShardId: 3, Index: 42, Node: "ie-1"},
		{TimeUnixNano: goldenAt.UnixNano() + 1, Kind: "volume", Keyspace: "users", Caller: "user:bob", CallerCountry: "IE",
			Detail: "1200 requests in 1m0s", Stream: "shard/3", ShardId: 3, Index: 99, Node: "ie-2"},
	}
	goldenCheckpoints = []checkpointSummary{
		{sc: &pb.SignedCheckpoint{Stream: "admin", Signer: "ie-1"},
			cp: audit.Checkpoint{Origin: "clover-audit/prod/admin", Size: 12, Root: tlog.Hash{0xde, 0xad, 0xbe, 0xef}, Time: goldenAt}, attested: true},
		{sc: &pb.SignedCheckpoint{Stream: "shard/3", Keyspace: "users", ShardId: 3, Signer: "ie-2"},
			cp: audit.Checkpoint{Origin: "clover-audit/prod/shard/3", Size: 0, Root: tlog.Hash{0xe3, 0xb0}, Time: goldenAt}},
	}
	goldenReportOK = &client.AuditReport{Streams: []client.AuditStreamReport{
		{Stream: "admin", KeptSize: 12, Nodes: []client.AuditNodeReport{
			{Node: "ie-1", Addr: "127.0.0.1:7401", OldSize: 12, NewSize: 15, Attested: true},
			{Node: "no-1", Addr: "127.0.0.1:7403", OldSize: 12, NewSize: 15, Attested: true}}},
		{Stream: "shard/4", Keyspace: "users", ShardID: 4, New: true},
	}}
	goldenReportBad = &client.AuditReport{Streams: []client.AuditStreamReport{
		{Stream: "shard/3", Keyspace: "users", ShardID: 3, KeptSize: 40, Nodes: []client.AuditNodeReport{
			{Node: "ie-1", Addr: "127.0.0.1:7401", OldSize: 40, NewSize: 44},
			{Node: "ie-2", Addr: "127.0.0.1:7402", OldSize: 40, NewSize: 38, Problems: []audit.Problem{
				{Stream: "shard/3", Node: "ie-2", Kind: "truncated", Detail: "the stream has 38 records, the kept checkpoint 40"}}},
			{Node: "no-1", Addr: "127.0.0.1:7403", OldSize: 40, Problems: []audit.Problem{
				{Stream: "shard/3", Node: "no-1", Kind: client.AuditUnreachable, Detail: "prove: unavailable: connection refused"}}}}},
		{Stream: "shard/5", Keyspace: "users", ShardID: 5, KeptSize: 9, Problems: []audit.Problem{
			{Stream: "shard/5", Kind: client.AuditMissing, Detail: "the cluster lists no such stream"}}},
	}}
)

// exportFixture is a stream's records, as an export holds them, and
// checkpoints of it signed by a node in insecure mode.
type exportFixture struct {
	t       *testing.T
	key     ed25519.PrivateKey
	records []*pb.AuditRecord
	hashes  []tlog.Hash // tlog's stored hashes of the records' leaves
}

func newExportFixture(t *testing.T, stream string, shard uint64, n int) *exportFixture {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &exportFixture{t: t, key: key}
	for i := range n {
		f.add(stream, shard, &pb.AuditEntry{TimeUnixNano: goldenAt.UnixNano() + int64(i), Caller: "user:alice", Node: "ie-1",
			Operation: "get", Keyspace: "users", ShardId: shard, KeyHmac: []byte{byte(i)}, Result: "allowed"})
	}
	return f
}

func (f *exportFixture) add(stream string, shard uint64, e *pb.AuditEntry) {
	leaf, err := audit.EncodeEntry(e)
	if err != nil {
		f.t.Fatal(err)
	}
	i := int64(len(f.records))
	hs, err := tlog.StoredHashes(i, leaf, tlog.HashReaderFunc(f.read))
	if err != nil {
		f.t.Fatal(err)
	}
	f.hashes = append(f.hashes, hs...)
	f.records = append(f.records, &pb.AuditRecord{Stream: stream, ShardId: shard, Index: uint64(i), Leaf: leaf, Entry: e})
}

func (f *exportFixture) read(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = f.hashes[x]
	}
	return out, nil
}

// checkpoint signs the tree of the first size records as node ie-1.
func (f *exportFixture) checkpoint(stream string, shard, size uint64) *pb.SignedCheckpoint {
	n := int64(size)
	root, err := tlog.TreeHash(n, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		for _, x := range idx {
			if x >= tlog.StoredHashCount(n) {
				f.t.Fatalf("hash %d beyond a tree of %d", x, n)
			}
		}
		return f.read(idx)
	}))
	if err != nil {
		f.t.Fatal(err)
	}
	cp := audit.Checkpoint{Origin: audit.Origin("prod", stream), Size: size, Root: root, Time: goldenAt}
	note, err := audit.SignCheckpoint(cp, "ie-1", f.key)
	if err != nil {
		f.t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(f.key.Public())
	if err != nil {
		f.t.Fatal(err)
	}
	return &pb.SignedCheckpoint{Stream: stream, Keyspace: "users", ShardId: shard, Note: note, Signer: "ie-1", SignerKey: pub,
		Size: size, Root: root[:], TimeUnixNano: goldenAt.UnixNano()}
}

// writeFiles writes recs as an export and cps as a checkpoint file.
func writeFiles(t *testing.T, recs []*pb.AuditRecord, cps ...*pb.SignedCheckpoint) (export, kept string) {
	dir := t.TempDir()
	export, kept = filepath.Join(dir, "export.jsonl"), filepath.Join(dir, "kept.ckpt")
	var b bytes.Buffer
	if err := audit.WriteExport(&b, recs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(export, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	ck, err := checkpointFile(cps)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kept, ck, 0o600); err != nil {
		t.Fatal(err)
	}
	return export, kept
}

// audit verify --export checks an export against kept checkpoints with
// no cluster: an export that extends them passes; one cut short, one with
// a record rewritten (consistently re-encoded, so only the tree shows it)
// and a kept checkpoint altered after signing are tampering (exit 14); a
// stream the kept file does not name is new, not a failure.
func TestAuditVerifyExport(t *testing.T) {
	c := cli{t: t, endpoints: "127.0.0.1:1"}
	f := newExportFixture(t, "shard/3", 3, 9)
	kept := f.checkpoint("shard/3", 3, 6)

	export, keptFile := writeFiles(t, f.records, kept)
	out := c.ok("audit", "verify", "--export", export, "--since", keptFile)
	if row := fieldsOf(strings.Split(out, "\n"), "shard/3"); len(row) < 8 || row[3] != "export" || row[4] != "6" || row[5] != "9" || row[6] != "OK" || row[7] != "no" {
		t.Errorf("intact export: row %q in\n%s", row, out)
	}
	var rep jsonAuditReport
	c.okJSON(&rep, "audit", "verify", "--export", export, "--since", keptFile)
	if !rep.OK || rep.Tampered || len(rep.Streams) != 1 || rep.Streams[0].Nodes[0].Status != "OK" {
		t.Errorf("intact export -w json: %+v", rep)
	}

	cut, _ := writeFiles(t, f.records[:5], kept)
	err := c.fail(14, "audit", "verify", "--export", cut, "--since", keptFile)
	if !strings.Contains(err.Error(), "tampering detected") {
		t.Errorf("cut export: %v", err)
	}
	out, _ = c.run("audit", "verify", "--export", cut, "--since", keptFile)
	if !strings.Contains(out, "TRUNCATED") || !strings.Contains(out, "TAMPERING DETECTED") {
		t.Errorf("cut export printed\n%s", out)
	}

	g := newExportFixture(t, "shard/3", 3, 9)
	g.records = nil
	g.hashes = nil
	for i, r := range f.records {
		e := r.Entry
		if i == 2 {
			e = &pb.AuditEntry{TimeUnixNano: e.TimeUnixNano, Caller: "user:alice", Node: "ie-1", Operation: "get", Keyspace: "users",
				ShardId: 3, KeyHmac: []byte{2}, Result: "refused", Rule: "read-role"}
		}
		g.add("shard/3", 3, e)
	}
	rewritten, _ := writeFiles(t, g.records, kept)
	c.fail(14, "audit", "verify", "--export", rewritten, "--since", keptFile)
	out, _ = c.run("audit", "verify", "--export", rewritten, "--since", keptFile)
	if row := fieldsOf(strings.Split(out, "\n"), "shard/3"); len(row) < 7 || row[6] != "REWRITTEN" {
		t.Errorf("rewritten record: row %q in\n%s", row, out)
	}

	altered := proto.Clone(kept).(*pb.SignedCheckpoint)
	altered.Note = bytes.Replace(altered.Note, []byte("\n6\n"), []byte("\n5\n"), 1)
	altered.Size = 5
	_, alteredFile := writeFiles(t, nil, altered)
	out, _ = c.run("audit", "verify", "--export", export, "--since", alteredFile)
	if row := fieldsOf(strings.Split(out, "\n"), "shard/3"); len(row) < 7 || row[6] != "SIGNATURE" {
		t.Errorf("altered kept checkpoint: row %q in\n%s", row, out)
	}
	c.fail(14, "audit", "verify", "--export", export, "--since", alteredFile)

	// A line of the export whose entry disagrees with its leaf.
	b, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	forged := filepath.Join(t.TempDir(), "forged.jsonl")
	if err := os.WriteFile(forged, bytes.Replace(b, []byte(`"allowed"`), []byte(`"refused"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	c.fail(14, "audit", "verify", "--export", forged, "--since", keptFile)

	h := newExportFixture(t, "shard/4", 4, 2)
	both, _ := writeFiles(t, append(append([]*pb.AuditRecord{}, f.records...), h.records...), kept)
	c.okJSON(&rep, "audit", "verify", "--export", both, "--since", keptFile)
	if !rep.OK || len(rep.Streams) != 2 || rep.Streams[1].Stream != "shard/4" || !rep.Streams[1].New {
		t.Errorf("export with a stream the kept file lacks: %+v", rep)
	}
}

// The audit commands check their flags before any contact with a node:
// each mistake is a usage error (exit 2) naming the flag.
func TestAuditFlags(t *testing.T) {
	c := cli{t: t, endpoints: "127.0.0.1:1"}
	dir := t.TempDir()
	notCkpt := filepath.Join(dir, "not.ckpt")
	if err := os.WriteFile(notCkpt, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newExportFixture(t, "shard/3", 3, 2)
	export, keptFile := writeFiles(t, f.records, f.checkpoint("shard/3", 3, 2))
	p := testcerts.NewPKI(t, "other")
	op := p.User(t, "auditor", "auditor", "IE")
	secure := f.checkpoint("shard/3", 3, 2)
	secure.SignerCert = []byte{0x30}
	_, secureFile := writeFiles(t, nil, secure)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"audit", "tail"}, "keyspace admin"},
		{[]string{"audit", "tail", "--keyspace", "users", "-n", "0"}, "-n 0"},
		{[]string{"audit", "search", "--keyspace", "users"}, "key key-file"},
		{[]string{"audit", "search", "--key", "k"}, "keyspace"},
		{[]string{"audit", "search", "--keyspace", "users", "--key", "k", "--key-file", notCkpt}, "key key-file"},
		{[]string{"audit", "search", "--keyspace", "users", "--key-file", filepath.Join(dir, "missing")}, "--key-file"},
		{[]string{"audit", "checkpoint"}, "keyspace admin"},
		{[]string{"audit", "verify"}, "since"},
		{[]string{"audit", "verify", "--since", filepath.Join(dir, "missing")}, "--since"},
		{[]string{"audit", "verify", "--since", notCkpt}, "not a checkpoint file"},
		{[]string{"audit", "verify", "--export", filepath.Join(dir, "missing"), "--since", keptFile}, "--export"},
		{[]string{"audit", "verify", "--export", export, "--since", secureFile}, "--tls-ca"},
		{[]string{"audit", "verify", "--export", export, "--since", keptFile, "--tls-ca", op.CA, "--cluster", "prod"}, `the CA of --tls-ca is cluster "other"`},
		{[]string{"audit", "verify", "--export", export, "--since", keptFile, "--tls-ca", notCkpt}, "holds no PEM CERTIFICATE"},
		{[]string{"audit", "export", "--keyspace", "users"}, "file"},
		{[]string{"audit", "incidents", "--since", "-1h"}, "--since"},
		{[]string{"audit", "nope"}, "unknown command"},
	} {
		err := c.fail(2, tc.args...)
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("clover %s: %v, want it to name %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	// A key over the limit is the cluster's invalid argument, found first.
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("k"), 5000), 0o600); err != nil {
		t.Fatal(err)
	}
	c.fail(7, "audit", "search", "--keyspace", "users", "--key-file", big)
	if out := c.ok("audit", "--help"); !strings.Contains(out, "verify") || !strings.Contains(out, "--cluster") {
		t.Errorf("clover audit --help:\n%s", out)
	}
}

// The checkpoint file is the protojson of AuditCheckpointResponse, and
// reads back as the checkpoints written.
func TestCheckpointFile(t *testing.T) {
	f := newExportFixture(t, "shard/3", 3, 3)
	cps := []*pb.SignedCheckpoint{f.checkpoint("shard/3", 3, 3), f.checkpoint("shard/3", 3, 1)}
	b, err := checkpointFile(cps)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string][]map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if got := raw["checkpoints"]; len(got) != 2 || got[0]["stream"] != "shard/3" || got[0]["shardId"] != "3" || got[1]["size"] != "1" {
		t.Errorf("checkpoint file %s", b)
	}
	path := filepath.Join(t.TempDir(), "k.ckpt")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	back, err := readCheckpointFile("--since", path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range cps {
		if _, _, err := audit.VerifySigned(back[i], nil, "prod"); err != nil || back[i].Size != cps[i].Size {
			t.Errorf("checkpoint %d read back: %v, %+v", i, err, back[i])
		}
	}
	if got := clusterOf("", back); got != "prod" {
		t.Errorf("clusterOf = %q, want the note's prod", got)
	}
}
