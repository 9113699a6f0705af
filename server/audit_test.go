package server_test

import (
	"bytes"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/audit"
	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/internal/testcluster"
	"github.com/clover-kv/clover/internal/testwait"
	"github.com/clover-kv/clover/internal/tlsfiles"
	"github.com/clover-kv/clover/raftfsm"
)

// The audit log against the demo cluster in secure mode: what it records,
// who may read it, where it lives, and that an auditor's checkpoint
// exposes a copy rewritten or truncated on one node's disk.

// auditRecords returns every record of every stream of keyspace, read by
// cl (an auditor) from the streams' leaders.
func auditRecords(t *testing.T, cl *client.Client, keyspace string) []*pb.AuditRecord {
	t.Helper()
	ctx := ctxT(t)
	streams, err := cl.AuditStreams(ctx, keyspace, keyspace == "")
	if err != nil {
		t.Fatalf("audit streams of %q: %v", keyspace, err)
	}
	var out []*pb.AuditRecord
	for _, st := range streams {
		for from := uint64(0); ; {
			resp, err := cl.AuditEntries(ctx, "", &pb.AuditEntriesRequest{ShardId: st.ShardId, From: from, Limit: 10000})
			if err != nil {
				t.Fatalf("audit entries of %s: %v", st.Name, err)
			}
			out = append(out, resp.Records...)
			from += uint64(len(resp.Records))
			if len(resp.Records) == 0 || from >= resp.TreeSize {
				break
			}
		}
	}
	return out
}

// find returns the records whose entry satisfies match.
func find(recs []*pb.AuditRecord, match func(e *pb.AuditEntry) bool) []*pb.AuditRecord {
	var out []*pb.AuditRecord
	for _, r := range recs {
		if r.Entry != nil && match(r.Entry) {
			out = append(out, r)
		}
	}
	return out
}

// Every request of an audited keyspace, allowed or refused, is an entry
// naming who, from where, through which node, and the rule; the key only
// as an HMAC; the auditor reads the log and never the data; the refusals
// are incidents; admin acts are in the admin stream.
func TestAuditRecordsRequestsAndRefusals(t *testing.T) {
	d := startSecureDemo(t)
	ctx := ctxT(t)
	key, value := []byte("user/audit-canary-7f3a"), []byte("value-canary-1c9e")
	if _, err := d.alice.Put(ctx, "users", key, value); err != nil {
		t.Fatal(err)
	}
	if _, err := d.alice.Get(ctx, "users", key); err != nil {
		t.Fatal(err)
	}
	if _, err := d.alice.Get(ctx, "users", key, client.Follower(time.Second)); err != nil {
		t.Fatal(err)
	}
	chen := d.ClientAs(t, d.pki.User(t, "chen", "reader", "CN"))
	if _, err := chen.Get(ctx, "users", key); !refusedBy(err, "caller-jurisdiction") {
		t.Fatalf("chen reads users: %v", err)
	}
	nora := d.ClientAs(t, d.pki.User(t, "nora", "auditor", "NO"))
	if _, err := nora.Get(ctx, "users", key); !refusedBy(err, "role") {
		t.Fatalf("the auditor reads data: %v", err)
	}
	if _, err := chen.AuditSearch(ctx, "users", key, 0); !refusedBy(err, "role") {
		t.Fatalf("a reader reads the audit log: %v", err)
	}

	// The refusals are recorded in the background: wait for chen's.
	var hits []*pb.AuditRecord
	testwait.For(t, 20*time.Second, "chen's refusal in the audit log", func() bool {
		var err error
		if hits, err = nora.AuditSearch(ctx, "users", key, 0); err != nil {
			t.Fatalf("audit search: %v", err)
		}
		return len(find(hits, func(e *pb.AuditEntry) bool { return e.Caller == "user:chen" })) > 0
	})
	want := []struct {
		caller, op, result, rule, consistency string
	}{
		{"user:alice", "put", "allowed", "allowed", ""},
		{"user:alice", "get", "allowed", "allowed", "linearizable"},
		{"user:alice", "get", "allowed", "allowed", "follower"},
		{"user:chen", "get", "refused", "caller-jurisdiction", ""},
	}
	for _, w := range want {
		got := find(hits, func(e *pb.AuditEntry) bool {
			return e.Caller == w.caller && e.Operation == w.op && e.Result == w.result && e.Rule == w.rule && e.Consistency == w.consistency
		})
		if len(got) != 1 {
			t.Errorf("%d entries for %+v, want 1; search found %d: %v", len(got), w, len(hits), hits)
			continue
		}
		e := got[0].Entry
		if e.Keyspace != "users" || e.ShardId == 0 || e.Node == "" || e.NodeLocality.GetCountry() == "" || len(e.KeyHmac) != 32 ||
			len(e.CallerFingerprint) != 64 || e.CallerCountry == "" || e.TimeUnixNano == 0 {
			t.Errorf("entry %+v lacks a field an auditor needs", e)
		}
		if !slices.Contains([]string{"IE", "NO"}, e.NodeLocality.GetCountry()) {
			t.Errorf("entry %+v was recorded by a node outside the EEA", e)
		}
	}
	// Nobody's key or value is in any entry of any stream, the admin
	// stream included, nor in any log line.
	all := append(auditRecords(t, nora, "users"), auditRecords(t, nora, "")...)
	for _, r := range all {
		if bytes.Contains(r.Leaf, key) || bytes.Contains(r.Leaf, value) || bytes.Contains(r.Leaf, []byte("rec/1")) {
			t.Fatalf("record %s/%d holds a key or value: %q", r.Stream, r.Index, r.Leaf)
		}
	}
	for _, l := range d.logs.Since(0, func(testcluster.LogRecord) bool { return true }) {
		if s := l.String(); strings.Contains(s, string(key)) || strings.Contains(s, string(value)) {
			t.Fatalf("log line holds a key or value: %s", s)
		}
	}
	// The admin stream holds the keyspaces' creation by olav.
	created := find(all, func(e *pb.AuditEntry) bool { return e.Operation == "create-keyspace" && e.Caller == "user:olav" })
	if len(created) != 2 {
		t.Errorf("%d create-keyspace entries by olav in the admin stream, want 2", len(created))
	}
	// Videos (public) are not audited by default.
	if recs := auditRecords(t, nora, "videos"); len(recs) != 0 {
		t.Errorf("videos, a public keyspace, has %d audit entries", len(recs))
	}

	inc, err := nora.AuditIncidents(ctx, "users", time.Time{}, 0)
	if err != nil {
		t.Fatalf("incidents: %v", err)
	}
	if len(slices.DeleteFunc(slices.Clone(inc), func(i *pb.AuditIncident) bool {
		return i.Kind != "refused" || i.Caller != "user:chen" || i.Rule != "caller-jurisdiction"
	})) != 1 {
		t.Errorf("chen's refusal is not one incident: %v", inc)
	}
}

// A node outside a keyspace's residency may record refusals in its audit
// streams, never an allowed request, and cannot record under another
// node's name.
func TestAuditAppendFromOutsideTheResidency(t *testing.T) {
	d := startSecureDemo(t)
	ctx := ctxT(t)
	f := d.pki.NodeFiles("us-1")
	tc, err := tlsfiles.Client(f.Cert, f.Key, f.CA)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := d.admin.Keyspace(ctx, "users")
	if err != nil {
		t.Fatal(err)
	}
	shard := ks.Shards[0]
	nora := d.ClientAs(t, d.pki.User(t, "nora", "auditor", "NO"))
	streams, err := nora.AuditStreams(ctx, "users", false)
	if err != nil {
		t.Fatal(err)
	}
	var leaderAddr string
	for _, st := range streams {
		if st.ShardId == shard.ID {
			for i, id := range st.Replicas {
				if id == st.Leader {
					leaderAddr = st.ReplicaAddrs[i]
				}
			}
		}
	}
	if leaderAddr == "" {
		t.Fatalf("no leader for shard %d in %v", shard.ID, streams)
	}
	cc, err := grpc.NewClient(leaderAddr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ic := pb.NewInternalClient(cc)
	forged := &pb.AuditEntry{Caller: "user:alice", Operation: "get", Keyspace: "users", Result: "allowed", Rule: "allowed", Node: "ie-1"}
	if _, err := ic.AuditAppend(ctx, &pb.AuditAppendRequest{ShardId: shard.ID, Entries: []*pb.AuditEntry{forged}}); err == nil {
		t.Fatal("a US node recorded an allowed read of an EEA keyspace")
	}
	refusal := &pb.AuditEntry{Caller: "user:mallory", Operation: "get", Keyspace: "users", Result: "refused", Rule: "residency", Node: "ie-1"}
	if _, err := ic.AuditAppend(ctx, &pb.AuditAppendRequest{ShardId: shard.ID, Entries: []*pb.AuditEntry{refusal}}); err != nil {
		t.Fatalf("a US node records a refusal: %v", err)
	}
	got := find(auditRecords(t, nora, "users"), func(e *pb.AuditEntry) bool { return e.Caller == "user:mallory" })
	if len(got) != 1 || got[0].Entry.Node != "us-1" || got[0].Entry.NodeLocality.GetCountry() != "US" {
		t.Fatalf("the US node's refusal is recorded as %v, want one entry naming us-1", got)
	}
}

// The access log of the EEA keyspace is in files of its replicas and in
// no file of the US node.
func TestAuditOfAnEEAKeyspaceIsOnNoUSNode(t *testing.T) {
	d := startSecureDemo(t)
	ctx := ctxT(t)
	key := []byte("user/residency-canary")
	for range 20 {
		if _, err := d.alice.Get(ctx, "users", key); err != nil && !errors.Is(err, client.ErrNotFound) {
			t.Fatal(err)
		}
	}
	nora := d.ClientAs(t, d.pki.User(t, "nora", "auditor", "NO"))
	hits, err := nora.AuditSearch(ctx, "users", key, 0)
	if err != nil || len(hits) == 0 {
		t.Fatalf("search: %d hits, %v", len(hits), err)
	}
	hmac := hits[0].Entry.KeyHmac
	var holders []string
	for _, r := range hits[0:1] {
		streams, err := nora.AuditStreams(ctx, "users", false)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range streams {
			if st.ShardId == r.ShardId {
				holders = st.Replicas
			}
		}
	}
	found := 0
	for _, id := range holders {
		if len(d.FilesContaining(id, hmac)) > 0 {
			found++
		}
	}
	if found == 0 {
		t.Fatalf("the key's HMAC is in no file of the stream's replicas %v: the search cannot fail", holders)
	}
	if files := d.FilesContaining("us-1", hmac); len(files) != 0 {
		t.Fatalf("the US node holds the EEA keyspace's audit log: %v", files)
	}
}

// An auditor's checkpoint, then one replica's copy of a stream rewritten
// on its disk (and its tree rehashed to match) or cut short: verify
// reports that copy, and the others as good.
func TestAuditVerifyDetectsATamperedCopy(t *testing.T) {
	for _, tc := range []struct {
		name, kind string
		tamper     func(leaves [][]byte) [][]byte
	}{
		{"rewritten", "rewritten", func(l [][]byte) [][]byte {
			// chen's refusal rewritten into an allowed read by alice.
			out := slices.Clone(l)
			for i, leaf := range out {
				if e, err := audit.DecodeEntry(leaf); err == nil && e.Caller == "user:chen" {
					e.Caller, e.Result, e.Rule = "user:alice", "allowed", "allowed"
					out[i], _ = audit.EncodeEntry(e)
				}
			}
			return out
		}},
		{"truncated", "truncated", func(l [][]byte) [][]byte { return l[:len(l)/2] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startSecureDemo(t)
			ctx := ctxT(t)
			key := []byte("user/tamper")
			for i := range 10 {
				if _, err := d.alice.Put(ctx, "users", key, []byte{byte(i)}); err != nil {
					t.Fatal(err)
				}
			}
			chen := d.ClientAs(t, d.pki.User(t, "chen", "reader", "CN"))
			if _, err := chen.Get(ctx, "users", key); !refusedBy(err, "caller-jurisdiction") {
				t.Fatalf("chen: %v", err)
			}
			nora := d.ClientAs(t, d.pki.User(t, "nora", "auditor", "NO"))
			var shard uint64
			testwait.For(t, 20*time.Second, "chen's refusal recorded", func() bool {
				hits, err := nora.AuditSearch(ctx, "users", key, 0)
				if err != nil {
					t.Fatal(err)
				}
				got := find(hits, func(e *pb.AuditEntry) bool { return e.Caller == "user:chen" })
				if len(got) > 0 {
					shard = got[0].ShardId
				}
				return len(got) > 0
			})
			kept, err := nora.AuditCheckpoint(ctx, "users", true)
			if err != nil {
				t.Fatal(err)
			}
			caPEM, err := os.ReadFile(d.pki.CAFile)
			if err != nil {
				t.Fatal(err)
			}
			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM(caPEM)
			rep, err := nora.AuditVerify(ctx, kept, roots, "clover-demo")
			if err != nil || !rep.OK() {
				t.Fatalf("verify of an untouched log: %v, problems %v", err, rep.Problems())
			}

			// Tamper with one replica of the shard's stream: a follower.
			streams, err := nora.AuditStreams(ctx, "users", false)
			if err != nil {
				t.Fatal(err)
			}
			var victim string
			for _, st := range streams {
				if st.ShardId == shard {
					for _, id := range st.Replicas {
						if id != st.Leader {
							victim = id
						}
					}
				}
			}
			d.StopNode(victim)
			rewriteAuditStream(t, d.Node(victim).Config.DataDir, shard, tc.tamper)
			d.StartNode(victim)
			d.WaitReady(victim)

			rep, err = nora.AuditVerify(ctx, kept, roots, "clover-demo")
			if err != nil {
				t.Fatal(err)
			}
			probs := rep.Problems()
			if len(probs) == 0 {
				t.Fatalf("verify passed a %s copy on %s", tc.name, victim)
			}
			for _, p := range probs {
				if p.Node != victim || p.Stream != "shard/"+itoa(shard) {
					t.Errorf("problem on an untouched copy: %+v", p)
				}
			}
			if !slices.ContainsFunc(probs, func(p audit.Problem) bool { return p.Kind == tc.kind }) {
				t.Errorf("problems %+v, want one of kind %s", probs, tc.kind)
			}
		})
	}
}

// rewriteAuditStream is what an attacker with a stopped node's disk and
// Clover's source can do: replace shard's audit stream by the leaves
// tamper returns, rehashed by the state machine's own code so that the
// copy is self-consistent, leaving the rest of the replica as it was.
func rewriteAuditStream(t *testing.T, dataDir string, shard uint64, tamper func([][]byte) [][]byte) {
	t.Helper()
	db, err := raftfsm.OpenDB(filepath.Join(dataDir, "pebble"), raftfsm.DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fsm, err := raftfsm.New(db, shard, raftfsm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := fsm.AuditView()
	if err != nil {
		t.Fatal(err)
	}
	leaves, err := v.Leaves(0, int(v.Size()))
	v.Close()
	if err != nil {
		t.Fatal(err)
	}
	salt := slices.Clone(fsm.AuditSalt())
	appliedKey := append(raftfsm.ShardPrefix(shard), 'a')
	applied, closer, err := db.Get(appliedKey)
	if err != nil {
		t.Fatal(err)
	}
	applied = slices.Clone(applied)
	closer.Close()

	start, end := raftfsm.AuditSpan(shard)
	if err := db.DeleteRange(start, end, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	fsm, err = raftfsm.New(db, shard, raftfsm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cmds := []raftfsm.Command{{AuditSalt: salt}}
	for _, l := range tamper(leaves) {
		cmds = append(cmds, raftfsm.Command{Audit: l})
	}
	res := fsm.Apply(&raft.Log{Index: fsm.AppliedIndex() + 1, Term: 1, Type: raft.LogCommand, Data: raftfsm.EncodeEntry(nil, cmds)})
	for _, r := range res.([]raftfsm.Result) {
		if r.Err != nil {
			t.Fatalf("re-apply the stream: %v", r.Err)
		}
	}
	// Put the applied index back, so that nothing but the stream differs.
	if err := db.Set(appliedKey, applied, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// Fail closed: a follower cut off from its leaders serves a bounded-
// staleness read of an unaudited keyspace from its own replica, and
// refuses one of an audited keyspace, whose audit entry cannot commit,
// with Unavailable naming the audit, within the audit timeout.
func TestAuditedFollowerReadFailsClosed(t *testing.T) {
	c := testcluster.Start(t, threeEEANodes())
	ctx := ctxT(t)
	cl := c.Client(t)
	unaudited := eea
	unaudited.Audit = "none"
	for ks, p := range map[string]client.Policy{"users": eea, "open": unaudited} {
		if _, err := cl.CreateKeyspace(ctx, ks, 1, p); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Put(ctx, ks, []byte("x"), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	st, err := cl.ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leads := map[string]bool{}
	for _, n := range st.Nodes {
		for _, r := range n.Replicas {
			if r.Leader && r.ShardID != 0 {
				leads[n.ID] = true
			}
		}
	}
	var follower string
	var others []string
	for _, id := range []string{"ie-1", "ie-2", "no-1"} {
		if follower == "" && !leads[id] {
			follower = id
		} else {
			others = append(others, id)
		}
	}
	if follower == "" {
		t.Fatalf("every node leads a shard: %v", leads)
	}
	fc := c.DirectClient(t, follower)
	const bound = 30 * time.Second
	for _, ks := range []string{"users", "open"} {
		if _, err := fc.Get(ctx, ks, []byte("x"), client.Follower(bound)); err != nil {
			t.Fatalf("follower read of %s at %s: %v", ks, follower, err)
		}
	}
	for _, id := range others {
		c.StopNode(id)
	}
	if kv, err := fc.Get(ctx, "open", []byte("x"), client.Follower(bound)); err != nil || string(kv.Value) != "v" {
		t.Fatalf("follower %s alone, unaudited keyspace: %+v, %v; want its replica to serve", follower, kv, err)
	}
	_, err = fc.Get(ctx, "users", []byte("x"), client.Follower(bound))
	var ce *client.Error
	if !errors.Is(err, client.ErrUnavailable) || !errors.As(err, &ce) || ce.Rule != "audit" {
		t.Fatalf("follower %s alone, audited keyspace: %v; want Unavailable, rule audit", follower, err)
	}
	if strings.Contains(err.Error(), "\"x\"") {
		t.Fatalf("the error names the key: %v", err)
	}
}
