package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/audit"
	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/identity"
	"github.com/clover-kv/clover/internal/keys"
)

// errTampered: a stream's log does not extend a checkpoint the auditor
// kept, or a record, proof or signature fails its check (exit code 14).
var errTampered = errors.New("tampering detected")

// pollInterval is how often --follow asks for new records.
const pollInterval = 500 * time.Millisecond

func newAuditCmd(g *globals) *cobra.Command {
	a := &cobra.Command{
		Use:   "audit",
		Short: "The tamper-evident audit log, for auditors: tail, search, checkpoint, verify, incidents, export",
		Long: "clover audit reads the access log of audited keyspaces (one stream per shard, held by the shard's\n" +
			"own replicas) and of the cluster's admin acts (the admin stream). Every stream is a Merkle tree:\n" +
			"keep a signed checkpoint (audit checkpoint -o FILE), and audit verify --since FILE later proves that\n" +
			"every replica still holds what it committed to, and only appended since. No key is ever shown: keys\n" +
			"appear only as HMACs under each shard's salt (docs/OPERATIONS.md, \"Auditing\").",
	}
	a.PersistentFlags().StringVar(&g.auditCluster, "cluster", "", "the cluster's name, which its checkpoints must give (default: the trust domain of --tls-ca; "+
		"without it, in insecure mode, the name the checkpoints give)")
	a.AddCommand(auditTail(g), auditSearch(g), auditCheckpoint(g), auditVerify(g), auditIncidents(g), auditExport(g))
	return a
}

// trust returns the cluster CA of --tls-ca and the cluster's name: --cluster,
// else the CA's trust domain. Without --tls-ca (insecure mode) roots is nil
// and signatures are unattested; the name is then --cluster or "", which
// clusterOf settles from the checkpoints.
func (g *globals) trust() (roots *x509.CertPool, cluster string, err error) {
	if g.tlsCA == "" {
		return nil, g.auditCluster, nil
	}
	b, err := os.ReadFile(g.tlsCA)
	if err != nil {
		return nil, "", fmt.Errorf("%w: --tls-ca: %w", errUsage, err)
	}
	roots = x509.NewCertPool()
	for rest := b; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		ca, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, "", fmt.Errorf("%w: --tls-ca %s: %w", errUsage, g.tlsCA, err)
		}
		if cluster == "" {
			if cluster, err = identity.TrustDomainOfCA(ca); err != nil {
				return nil, "", fmt.Errorf("%w: --tls-ca %s: %w", errUsage, g.tlsCA, err)
			}
		}
		roots.AddCert(ca)
	}
	switch {
	case cluster == "":
		return nil, "", fmt.Errorf("%w: --tls-ca %s holds no PEM CERTIFICATE", errUsage, g.tlsCA)
	case g.auditCluster != "" && g.auditCluster != cluster:
		return nil, "", fmt.Errorf("%w: --cluster %q: the CA of --tls-ca is cluster %q's", errUsage, g.auditCluster, cluster)
	}
	return roots, cluster, nil
}

// clusterOf returns cluster, or when it is "" (insecure mode without
// --cluster) the cluster the first checkpoint's note names: nothing attests
// it, but every other checkpoint must then name the same.
func clusterOf(cluster string, cps []*pb.SignedCheckpoint) string {
	if cluster != "" || len(cps) == 0 {
		return cluster
	}
	first, _, _ := strings.Cut(string(cps[0].GetNote()), "\n")
	rest, _ := strings.CutPrefix(first, "clover-audit/")
	name, _, _ := strings.Cut(rest, "/")
	return name
}

// needRoots refuses to check, without the cluster CA, checkpoints that
// secure-mode nodes signed: their certificates need it.
func needRoots(roots *x509.CertPool, cps []*pb.SignedCheckpoint) error {
	if roots != nil {
		return nil
	}
	for _, sc := range cps {
		if len(sc.GetSignerCert()) > 0 {
			return fmt.Errorf("%w: checkpoint of stream %s is signed with a node certificate: give the cluster CA (--tls-ca) to check it", errUsage, sc.GetStream())
		}
	}
	return nil
}

// unattested tells standard error, once, that no CA attests the signing
// keys of checkpoints.
func unattested(cmd *cobra.Command, roots *x509.CertPool) {
	if roots == nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "clover: unattested: no --tls-ca, so no CA attests the nodes' signing keys; proofs are still checked")
	}
}

// keyspaceFlags adds --keyspace and --admin; one of them is required.
func keyspaceFlags(cmd *cobra.Command, keyspace *string, admin *bool) {
	cmd.Flags().StringVar(keyspace, "keyspace", "", "the keyspace whose streams to read")
	cmd.Flags().BoolVar(admin, "admin", false, "include the admin stream (the cluster's admin acts); alone: the admin stream only")
	cmd.MarkFlagsOneRequired("keyspace", "admin")
}

func auditTail(g *globals) *cobra.Command {
	var keyspace string
	var admin, follow bool
	var n int
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "The latest records of every stream of a keyspace, merged by time; each one's inclusion proof is checked",
		Long: "Prints the latest -n records of the keyspace's streams (and with --admin the admin stream), oldest\n" +
			"first. Each record is proved included in a checkpoint fetched and verified just before; a proof\n" +
			"that fails is an error (exit 14). --follow keeps printing new records, asking every 500 ms, until\n" +
			"interrupted (--timeout then bounds each poll, not the command).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1 {
				return fmt.Errorf("%w: -n %d: want at least 1", errUsage, n)
			}
			roots, cluster, err := g.trust()
			if err != nil {
				return err
			}
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			unattested(cmd, roots)
			t := &tailer{c: c, keyspace: keyspace, admin: admin, roots: roots, cluster: cluster, next: map[string]uint64{}}
			recs, err := t.poll(ctx, n)
			if err != nil {
				return err
			}
			if len(recs) > n {
				recs = recs[len(recs)-n:]
			}
			if !follow {
				return g.showRecords(recs)
			}
			return g.follow(cmd, recs, func(ctx context.Context) ([]*pb.AuditRecord, error) { return t.poll(ctx, 0) })
		},
	}
	keyspaceFlags(cmd, &keyspace, &admin)
	cmd.Flags().IntVarP(&n, "lines", "n", 20, "how many of the latest records to print")
	cmd.Flags().BoolVar(&follow, "follow", false, "keep printing new records until interrupted")
	return cmd
}

// tailer reads the new records of a keyspace's streams, each checked
// against a fresh checkpoint.
type tailer struct {
	c        *client.Client
	keyspace string
	admin    bool
	roots    *x509.CertPool
	cluster  string
	// next: per stream, the index of the first record not yet read.
	next map[string]uint64
}

// poll returns the records appended to every stream since the last poll,
// oldest first; the first poll (n > 0) returns each stream's latest n.
func (t *tailer) poll(ctx context.Context, n int) ([]*pb.AuditRecord, error) {
	cps, err := t.c.AuditCheckpoint(ctx, t.keyspace, t.admin)
	if err != nil {
		return nil, err
	}
	var out []*pb.AuditRecord
	t.cluster = clusterOf(t.cluster, cps)
	for _, sc := range cps {
		cp, _, err := audit.VerifySigned(sc, t.roots, t.cluster)
		if err != nil {
			return nil, fmt.Errorf("%w: checkpoint of stream %s signed by %s: %w", errTampered, sc.GetStream(), sc.GetSigner(), err)
		}
		from, seen := t.next[sc.GetStream()]
		if !seen && cp.Size > uint64(n) {
			from = cp.Size - uint64(n)
		}
		if from > cp.Size {
			return nil, fmt.Errorf("%w: stream %s shrank from %d records to %d", errTampered, sc.GetStream(), from, cp.Size)
		}
		recs, err := provedRecords(ctx, t.c, sc.GetShardId(), from, cp)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", sc.GetStream(), err)
		}
		t.next[sc.GetStream()] = cp.Size
		out = append(out, recs...)
	}
	sortByTime(out)
	return out, nil
}

// provedRecords fetches the records [from, cp.Size) of the stream of shard
// with their inclusion proofs against cp and checks each; the entry shown
// is the one decoded from the proved leaf.
func provedRecords(ctx context.Context, c *client.Client, shard, from uint64, cp audit.Checkpoint) ([]*pb.AuditRecord, error) {
	var out []*pb.AuditRecord
	for from < cp.Size {
		resp, err := c.AuditEntries(ctx, "", &pb.AuditEntriesRequest{ShardId: shard, From: from, Limit: uint32(min(cp.Size-from, 10000)), ProofSize: cp.Size})
		if err != nil {
			return nil, err
		}
		if len(resp.GetRecords()) == 0 {
			return nil, fmt.Errorf("%w: node %s returned no record at index %d of a tree of %d", errTampered, resp.GetNode(), from, cp.Size)
		}
		for _, r := range resp.GetRecords() {
			if from == cp.Size {
				break
			}
			if r.GetIndex() != from {
				return nil, fmt.Errorf("%w: node %s returned record %d where %d was due", errTampered, resp.GetNode(), r.GetIndex(), from)
			}
			if err := audit.VerifyInclusion(cp.Size, cp.Root[:], r.GetIndex(), r.GetLeaf(), r.GetInclusion()); err != nil {
				return nil, fmt.Errorf("%w: record %d from node %s: inclusion proof: %w", errTampered, r.GetIndex(), resp.GetNode(), err)
			}
			e, err := audit.DecodeEntry(r.GetLeaf())
			if err != nil {
				return nil, fmt.Errorf("%w: record %d from node %s: %w", errTampered, r.GetIndex(), resp.GetNode(), err)
			}
			r.Entry = e
			out = append(out, r)
			from++
		}
	}
	return out, nil
}

// sortByTime orders records by time, then stream and index.
func sortByTime(recs []*pb.AuditRecord) {
	slices.SortStableFunc(recs, func(a, b *pb.AuditRecord) int {
		if d := a.GetEntry().GetTimeUnixNano() - b.GetEntry().GetTimeUnixNano(); d != 0 {
			return signOf(d)
		}
		if a.GetShardId() != b.GetShardId() {
			return signOf(int64(a.GetShardId()) - int64(b.GetShardId()))
		}
		return signOf(int64(a.GetIndex()) - int64(b.GetIndex()))
	})
}

func signOf(d int64) int {
	switch {
	case d < 0:
		return -1
	case d > 0:
		return 1
	}
	return 0
}

// follow prints first, then what each poll returns, every pollInterval,
// until the command's context ends (an interrupt); --timeout bounds each
// poll.
func (g *globals) follow(cmd *cobra.Command, first []*pb.AuditRecord, poll func(ctx context.Context) ([]*pb.AuditRecord, error)) error {
	p := &recordPrinter{g: g}
	if err := p.print(first); err != nil {
		return err
	}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case <-cmd.Context().Done():
			return nil
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
		recs, err := poll(ctx)
		cancel()
		if cmd.Context().Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if err := p.print(recs); err != nil {
			return err
		}
	}
}

func auditSearch(g *globals) *cobra.Command {
	var keyspace, key, keyFile string
	var limit int
	cmd := &cobra.Command{
		Use:   "search",
		Short: "The records of a keyspace that name a key (the key is hashed by a node holding it, never shown)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := searchKey(cmd, key, keyFile)
			if err != nil {
				return err
			}
			if limit < 0 {
				return fmt.Errorf("%w: --limit %d: want 0 (the node's default) or more", errUsage, limit)
			}
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			recs, err := c.AuditSearch(ctx, keyspace, k, limit)
			if err != nil {
				return err
			}
			for _, r := range recs {
				if e, err := audit.DecodeEntry(r.GetLeaf()); err == nil {
					r.Entry = e
				} else if len(r.GetLeaf()) > 0 {
					return fmt.Errorf("%w: record %d of stream %s: %w", errTampered, r.GetIndex(), r.GetStream(), err)
				}
			}
			sortByTime(recs)
			return g.showRecords(recs)
		},
	}
	cmd.Flags().StringVar(&keyspace, "keyspace", "", "the keyspace of the key")
	cmd.Flags().StringVar(&key, "key", "", "the key")
	cmd.Flags().StringVar(&keyFile, "key-file", "", "read the key from this file (for keys that are not text)")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many records (0: the node's default)")
	_ = cmd.MarkFlagRequired("keyspace")
	cmd.MarkFlagsOneRequired("key", "key-file")
	cmd.MarkFlagsMutuallyExclusive("key", "key-file")
	return cmd
}

// searchKey returns --key, or the contents of --key-file.
func searchKey(cmd *cobra.Command, key, file string) ([]byte, error) {
	if !cmd.Flags().Changed("key-file") {
		if key == "" {
			return nil, fmt.Errorf("%w: --key is empty", errUsage)
		}
		return []byte(key), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: --key-file: %w", errUsage, err)
	}
	if len(b) == 0 || len(b) > keys.MaxKeyBytes {
		return nil, fmt.Errorf("%w: --key-file %s holds %d bytes: want 1 to %d (4 KiB)", client.ErrInvalidArgument, file, len(b), keys.MaxKeyBytes)
	}
	return b, nil
}

func auditCheckpoint(g *globals) *cobra.Command {
	var keyspace, file string
	var admin bool
	cmd := &cobra.Command{
		Use:   "checkpoint",
		Short: "A signed checkpoint of every stream of a keyspace, to keep for audit verify --since",
		Long: "Fetches a signed checkpoint (tree size, root hash, time) of each stream of the keyspace (and with\n" +
			"--admin of the admin stream) and checks its signature. The checkpoint file (-o FILE; standard output\n" +
			"without -o) is the protojson of AuditCheckpointResponse: keep it where the cluster's operators\n" +
			"cannot change it. With -o, a summary of it is printed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			roots, cluster, err := g.trust()
			if err != nil {
				return err
			}
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			cps, err := c.AuditCheckpoint(ctx, keyspace, admin)
			if err != nil {
				return err
			}
			sums, err := checkCheckpoints(cps, roots, clusterOf(cluster, cps))
			if err != nil {
				return err
			}
			b, err := checkpointFile(cps)
			if err != nil {
				return err
			}
			if file == "" {
				_, err := g.out.Write(b)
				return err
			}
			if err := os.WriteFile(file, b, 0o644); err != nil {
				return fmt.Errorf("-o: %w", err)
			}
			unattested(cmd, roots)
			return g.showCheckpoints(sums)
		},
	}
	keyspaceFlags(cmd, &keyspace, &admin)
	cmd.Flags().StringVarP(&file, "file", "o", "", "write the checkpoint file here (default: standard output)")
	return cmd
}

// checkpointSummary is one checked checkpoint, for display.
type checkpointSummary struct {
	sc       *pb.SignedCheckpoint
	cp       audit.Checkpoint
	attested bool
}

// checkCheckpoints verifies the signature of each checkpoint.
func checkCheckpoints(cps []*pb.SignedCheckpoint, roots *x509.CertPool, cluster string) ([]checkpointSummary, error) {
	out := make([]checkpointSummary, 0, len(cps))
	for _, sc := range cps {
		cp, attested, err := audit.VerifySigned(sc, roots, cluster)
		if err != nil {
			return nil, fmt.Errorf("%w: checkpoint of stream %s signed by %s: %w", errTampered, sc.GetStream(), sc.GetSigner(), err)
		}
		out = append(out, checkpointSummary{sc: sc, cp: cp, attested: attested})
	}
	return out, nil
}

// checkpointFile is the protojson of the checkpoints, as kept.
func checkpointFile(cps []*pb.SignedCheckpoint) ([]byte, error) {
	b, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: true}.Marshal(&pb.AuditCheckpointResponse{Checkpoints: cps})
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// readCheckpointFile reads a checkpoint file that audit checkpoint wrote.
func readCheckpointFile(flag, path string) ([]*pb.SignedCheckpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", errUsage, flag, err)
	}
	var resp pb.AuditCheckpointResponse
	if err := protojson.Unmarshal(b, &resp); err != nil {
		return nil, fmt.Errorf("%w: %s %s is not a checkpoint file (clover audit checkpoint -o): %w", errUsage, flag, path, err)
	}
	if len(resp.Checkpoints) == 0 {
		return nil, fmt.Errorf("%w: %s %s holds no checkpoint", errUsage, flag, path)
	}
	return resp.Checkpoints, nil
}

func auditVerify(g *globals) *cobra.Command {
	var since, export string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Prove that every replica of every stream extends the checkpoints you kept; exit 14 on tampering",
		Long: "With --since FILE (a file of audit checkpoint), asks every replica of each stream, from its own\n" +
			"copy, for a signed checkpoint and the consistency proof from the kept one, reads all its records\n" +
			"and checks them against it. Exit 0 when every replica extends its kept checkpoint; 14 when one\n" +
			"does not (truncated, rewritten, a bad record, signature or proof, a stream gone); 13 when a\n" +
			"replica could not be reached (and nothing worse was found). Streams created since are listed, not\n" +
			"checked. With --export FILE (of audit export) it needs no cluster: it rebuilds each stream's tree\n" +
			"from the export and checks it against the kept checkpoints.",
		Example: "  clover audit checkpoint --keyspace users --admin -o users.ckpt\n" +
			"  clover audit verify --since users.ckpt\n" +
			"  clover audit verify --export users.jsonl --since users.ckpt",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kept, err := readCheckpointFile("--since", since)
			if err != nil {
				return err
			}
			roots, cluster, err := g.trust()
			if err != nil {
				return err
			}
			if err := needRoots(roots, kept); err != nil {
				return err
			}
			cluster = clusterOf(cluster, kept)
			var rep *client.AuditReport
			if export != "" {
				if rep, err = verifyExportFile(export, kept, roots, cluster); err != nil {
					return err
				}
			} else {
				ctx, c, done, err := g.connect(cmd)
				if err != nil {
					return err
				}
				defer done()
				if rep, err = c.AuditVerify(ctx, kept, roots, cluster); err != nil {
					return err
				}
			}
			unattested(cmd, roots)
			if err := g.showAuditReport(rep); err != nil {
				return err
			}
			return reportErr(rep)
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "the checkpoint file you kept (clover audit checkpoint -o)")
	cmd.Flags().StringVar(&export, "export", "", "verify this export (clover audit export -o) offline instead of the cluster")
	_ = cmd.MarkFlagRequired("since")
	return cmd
}

// reportErr is the error, and so the exit code, of a report: tampering
// before unreachable replicas.
func reportErr(rep *client.AuditReport) error {
	var tampered, unreachable int
	for _, p := range rep.Problems() {
		if p.Kind == client.AuditUnreachable {
			unreachable++
		} else {
			tampered++
		}
	}
	switch {
	case tampered > 0:
		return fmt.Errorf("%w: %d problems found", errTampered, tampered)
	case unreachable > 0:
		return fmt.Errorf("%w: %d replicas could not be verified", client.ErrUnavailable, unreachable)
	}
	return nil
}

func auditIncidents(g *globals) *cobra.Command {
	var keyspace string
	var since time.Duration
	var limit int
	var follow bool
	cmd := &cobra.Command{
		Use:   "incidents",
		Short: "What the log shows an auditor must look at: refused requests, new caller jurisdictions, unusual volume",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if since <= 0 {
				return fmt.Errorf("%w: --since %v: want a positive duration", errUsage, since)
			}
			if limit < 0 {
				return fmt.Errorf("%w: --limit %d: want 0 (the node's default) or more", errUsage, limit)
			}
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			incs, err := c.AuditIncidents(ctx, keyspace, time.Now().Add(-since), limit)
			if err != nil {
				return err
			}
			if !follow {
				return g.showIncidents(incs)
			}
			return g.followIncidents(cmd, c, keyspace, limit, incs)
		},
	}
	cmd.Flags().StringVar(&keyspace, "keyspace", "", "only this keyspace (default: every keyspace the answering node may serve, and the admin stream)")
	cmd.Flags().DurationVar(&since, "since", 24*time.Hour, "how far back to look")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many incidents (0: the node's default)")
	cmd.Flags().BoolVar(&follow, "follow", false, "keep printing new incidents until interrupted")
	return cmd
}

// followIncidents prints first, then the incidents raised after the last
// one printed, every pollInterval, until interrupted.
func (g *globals) followIncidents(cmd *cobra.Command, c *client.Client, keyspace string, limit int, first []*pb.AuditIncident) error {
	p := &incidentPrinter{g: g, seen: map[string]bool{}}
	if err := p.print(first); err != nil {
		return err
	}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case <-cmd.Context().Done():
			return nil
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
		incs, err := c.AuditIncidents(ctx, keyspace, p.last, limit)
		cancel()
		if cmd.Context().Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if err := p.print(incs); err != nil {
			return err
		}
	}
}

func auditExport(g *globals) *cobra.Command {
	var keyspace, file, ckpt string
	var admin bool
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Every record of a keyspace's streams to a JSON Lines file, with the checkpoint it matches",
		Long: "Fetches a signed checkpoint of each stream and every record up to it, checks that the records\n" +
			"rebuild the checkpoint's tree, and writes them as JSON Lines (-o). --checkpoint writes that\n" +
			"checkpoint file too. audit verify --export FILE --since KEPT checks the export later, offline.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			roots, cluster, err := g.trust()
			if err != nil {
				return err
			}
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			cps, err := c.AuditCheckpoint(ctx, keyspace, admin)
			if err != nil {
				return err
			}
			sums, err := checkCheckpoints(cps, roots, clusterOf(cluster, cps))
			if err != nil {
				return err
			}
			var recs []*pb.AuditRecord
			for _, s := range sums {
				r, err := streamRecords(ctx, c, s.sc.GetShardId(), s.cp.Size)
				if err != nil {
					return fmt.Errorf("stream %s: %w", s.sc.GetStream(), err)
				}
				recs = append(recs, r...)
			}
			if err := reportErr(verifyExport(recs, cps, roots, clusterOf(cluster, cps))); err != nil {
				return fmt.Errorf("the records do not match their checkpoints: %w", err)
			}
			if err := writeExport(file, recs); err != nil {
				return err
			}
			if ckpt != "" {
				b, err := checkpointFile(cps)
				if err != nil {
					return err
				}
				if err := os.WriteFile(ckpt, b, 0o644); err != nil {
					return fmt.Errorf("--checkpoint: %w", err)
				}
			}
			unattested(cmd, roots)
			return g.showCheckpoints(sums)
		},
	}
	keyspaceFlags(cmd, &keyspace, &admin)
	cmd.Flags().StringVarP(&file, "file", "o", "", "the export file to write (JSON Lines)")
	cmd.Flags().StringVar(&ckpt, "checkpoint", "", "also write the checkpoint file the export matches")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// streamRecords fetches the records [0, size) of the stream of shard.
func streamRecords(ctx context.Context, c *client.Client, shard, size uint64) ([]*pb.AuditRecord, error) {
	var out []*pb.AuditRecord
	for from := uint64(0); from < size; {
		resp, err := c.AuditEntries(ctx, "", &pb.AuditEntriesRequest{ShardId: shard, From: from, Limit: uint32(min(size-from, 10000))})
		if err != nil {
			return nil, err
		}
		if len(resp.GetRecords()) == 0 {
			return nil, fmt.Errorf("%w: node %s returned no record at index %d of a tree of %d", errTampered, resp.GetNode(), from, size)
		}
		for _, r := range resp.GetRecords() {
			if from == size {
				break
			}
			out = append(out, r)
			from++
		}
	}
	return out, nil
}

// writeExport writes recs to path as JSON Lines.
func writeExport(path string, recs []*pb.AuditRecord) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	if err := audit.WriteExport(f, recs); err != nil {
		f.Close()
		return fmt.Errorf("-o %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("-o %s: %w", path, err)
	}
	return nil
}
