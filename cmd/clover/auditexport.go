package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"

	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/proto"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/audit"
	"github.com/clover-kv/clover/client"
)

// exportNode stands for the export in the report of an offline verify.
const exportNode = "export"

// verifyExportFile reads an export (audit export -o) and checks it
// against the kept checkpoints.
func verifyExportFile(path string, kept []*pb.SignedCheckpoint, roots *x509.CertPool, cluster string) (*client.AuditReport, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: --export: %w", errUsage, err)
	}
	defer f.Close()
	recs, err := audit.ReadExport(f)
	if errors.Is(err, audit.ErrBadExport) {
		// A line whose leaf, leaf hash and entry disagree: altered.
		return nil, fmt.Errorf("%w: --export %s: %w", errTampered, path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("--export %s: %w", path, err)
	}
	return verifyExport(recs, kept, roots, cluster), nil
}

// verifyExport checks, for each kept checkpoint, that the exported records
// of its stream rebuild the tree it signs: the first Size leaves hash to
// its root, and every record's entry is the one its leaf encodes. It needs
// no cluster. Streams of the export that no kept checkpoint names are
// reported as new.
func verifyExport(recs []*pb.AuditRecord, kept []*pb.SignedCheckpoint, roots *x509.CertPool, cluster string) *client.AuditReport {
	byStream := map[string][]*pb.AuditRecord{}
	for _, r := range recs {
		byStream[r.GetStream()] = append(byStream[r.GetStream()], r)
	}
	rep := &client.AuditReport{}
	keptStreams := map[string]bool{}
	for _, k := range kept {
		keptStreams[k.GetStream()] = true
		sr := client.AuditStreamReport{Stream: k.GetStream(), Keyspace: k.GetKeyspace(), ShardID: k.GetShardId(), KeptSize: k.GetSize()}
		old, attested, err := audit.VerifySigned(k, roots, cluster)
		if err != nil {
			sr.Problems = []audit.Problem{{Stream: sr.Stream, Node: k.GetSigner(), Kind: "signature",
				Detail: fmt.Sprintf("kept checkpoint signed by %s: %v", k.GetSigner(), err)}}
		} else {
			sr.Nodes = []client.AuditNodeReport{checkExported(sr.Stream, old, attested, byStream[sr.Stream])}
		}
		rep.Streams = append(rep.Streams, sr)
	}
	for name, rs := range byStream {
		if !keptStreams[name] {
			rep.Streams = append(rep.Streams, client.AuditStreamReport{Stream: name, Keyspace: rs[0].GetEntry().GetKeyspace(), ShardID: rs[0].GetShardId(), New: true})
		}
	}
	slices.SortFunc(rep.Streams, func(a, b client.AuditStreamReport) int {
		switch {
		case a.Keyspace != b.Keyspace:
			return cmpStr(a.Keyspace, b.Keyspace)
		case a.ShardID != b.ShardID:
			return signOf(int64(a.ShardID) - int64(b.ShardID))
		}
		return cmpStr(a.Stream, b.Stream)
	})
	return rep
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// checkExported checks the exported records of one stream against its
// kept checkpoint old.
func checkExported(stream string, old audit.Checkpoint, attested bool, recs []*pb.AuditRecord) client.AuditNodeReport {
	slices.SortFunc(recs, func(a, b *pb.AuditRecord) int { return signOf(int64(a.GetIndex()) - int64(b.GetIndex())) })
	n := 0 // the records [0, n) are all present, once
	for n < len(recs) && recs[n].GetIndex() == uint64(n) {
		n++
	}
	nr := client.AuditNodeReport{Node: exportNode, OldSize: old.Size, NewSize: uint64(n), Attested: attested}
	problem := func(kind, detail string) client.AuditNodeReport {
		nr.Problems = append(nr.Problems, audit.Problem{Stream: stream, Node: exportNode, Kind: kind, Detail: detail})
		return nr
	}
	if uint64(n) < old.Size {
		return problem("truncated", fmt.Sprintf("the export holds records [0, %d) of the %d the checkpoint covers", n, old.Size))
	}
	leaves := make([][]byte, old.Size)
	for i := range leaves {
		r := recs[i]
		leaves[i] = r.GetLeaf()
		e, err := audit.DecodeEntry(r.GetLeaf())
		if err != nil {
			return problem("entry", fmt.Sprintf("record %d: %v", i, err))
		}
		if r.GetEntry() != nil && !proto.Equal(e, r.GetEntry()) {
			return problem("entry", fmt.Sprintf("record %d: its entry is not the one its leaf encodes", i))
		}
	}
	if root := treeRoot(leaves); !bytes.Equal(root[:], old.Root[:]) {
		return problem("rewritten", fmt.Sprintf("the first %d records hash to root %x, the kept checkpoint's is %x", old.Size, root[:], old.Root[:]))
	}
	return nr
}

// treeRoot is the RFC 6962 Merkle tree hash of leaves (tlog's hashing):
// the hash of the empty string for none.
func treeRoot(leaves [][]byte) tlog.Hash {
	hashes := make([]tlog.Hash, len(leaves))
	for i, l := range leaves {
		hashes[i] = tlog.RecordHash(l)
	}
	return subtreeRoot(hashes)
}

// subtreeRoot splits hs at the largest power of two below its length.
func subtreeRoot(hs []tlog.Hash) tlog.Hash {
	switch len(hs) {
	case 0:
		return tlog.Hash(sha256.Sum256(nil))
	case 1:
		return hs[0]
	}
	k := 1
	for k*2 < len(hs) {
		k *= 2
	}
	return tlog.NodeHash(subtreeRoot(hs[:k]), subtreeRoot(hs[k:]))
}
