package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/identity"
	"github.com/clover-kv/clover/internal/pki"
	"github.com/clover-kv/clover/placement"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// Fixed values for the renderers: one of each shape, with lists empty and
// full, hash bounds at both ends of the hash space, and user bytes that a
// terminal must not receive raw.
var (
	goldenAt = time.UnixMilli(1767225600123).UTC()
	goldenKS = client.Keyspace{Name: "users", Created: goldenAt,
		Policy: client.Policy{AllowJurisdictions: []string{"EEA"}, AllowCountries: []string{"CH"}, DenyCountries: []string{"LI"},
			Replicas: 3, LeaderPreference: []string{"ie-dublin"}, Class: "personal",
			ReadRoles: []string{"reader", "admin"}, CallerJurisdictions: []string{"IE", "NO"}, CallerCountries: []string{"IE", "NO"}},
		Shards: []client.Shard{
			{ID: 1, HashStart: 0, HashEnd: 0x7fffffffffffffff, Replicas: []string{"ie-1", "ie-2", "no-1"}, Leader: "ie-1"},
			{ID: 2, HashStart: 0x8000000000000000, HashEnd: math.MaxUint64, Replicas: []string{"ie-1", "ie-2", "no-1"}},
		}}
	goldenBareKS = client.Keyspace{Name: "videos", Policy: client.Policy{Replicas: 1, Class: "public", CallerAnywhere: true}}
	goldenKVs    = []client.KV{
		{Key: []byte("user/1"), Value: []byte(`{"name":"Aoife"}`), Version: 7},
		{Key: []byte("esc/\x1b[2Jred\tkey"), Value: []byte("line 1\nline 2"), Version: 8},
		{Key: []byte("bin/\xff\xfe"), Value: []byte{0, 1, 0xff}, Version: 9},
		{Key: []byte(`"quoted"`), Value: []byte("Zoë"), Version: 10},
	}
	goldenStatus = client.ClusterStatus{MetaLeader: "ie-1",
		Nodes: []client.NodeStatus{
			{ID: "ie-1", Locality: client.Locality{Country: "IE", Region: "ie-dublin", Zone: "a"}, Jurisdictions: []string{"EEA", "EU"},
				GRPCAddr: "127.0.0.1:7401", Live: true, Reachable: true, ShardsHeld: 1, ShardsLed: 1,
				Replicas: []client.ReplicaStatus{{ShardID: 1, Keyspace: "users", Leader: true, State: "Leader",
					AppliedIndex: 12, CommitIndex: 12, LastIndex: 12}}},
			{ID: "us-1", Locality: client.Locality{Country: "US", Region: "us-east", Zone: "a"},
				GRPCAddr: "127.0.0.1:7404", Live: true, Error: "connection refused"},
		},
		Placement:                client.VerifyReport{OK: true, ShardsChecked: 1, ReplicasChecked: 3, Checked: goldenAt},
		MetaMembers:              []client.Member{{Node: "ie-1", Voter: true}, {Node: "us-1"}},
		PersonalDataJurisdiction: "EEA",
	}
	goldenVerifyBad = client.VerifyReport{ShardsChecked: 2, ReplicasChecked: 5, Checked: goldenAt,
		Violations: []client.Violation{
			{ShardID: 2, Keyspace: "users", Node: "us-1", Kind: "outside-policy", Detail: "US is not permitted by residency=EEA"},
			{ShardID: 1, Keyspace: "users", Kind: "no-leader", Detail: "no replica reports leading"},
		}}
	goldenEvents = []client.PlacementEvent{
		{Time: goldenAt, ShardID: 2, Keyspace: "users", Node: "no-1", Action: "add-replica", Reason: "replace us-1 outside the policy"},
		{Time: goldenAt.Add(-time.Second), Keyspace: "users", Action: "set-policy", Reason: "policy changed"},
	}
	goldenKSStatus = client.KeyspaceStatus{Name: "users", Policy: goldenKS.Policy, Conforming: 1, Moving: 1,
		Shards: []client.ShardPlacement{
			{ShardID: 1, Status: "conforming", Members: []client.Member{{Node: "ie-1", Voter: true}}, Leader: "ie-1"},
			{ShardID: 2, Status: "moving", Problems: []string{"us-1 is outside the policy"},
				Members: []client.Member{{Node: "us-1", Voter: true}, {Node: "no-1"}}},
		}}
	goldenCerts = []pki.Entry{
		{File: "certs/ca.crt", CA: true, TrustDomain: "prod", ChainsToCA: true, CAFile: "certs/ca.crt", Subject: "CN=Clover CA prod,O=Clover",
			Serial: "1f", NotBefore: goldenAt, NotAfter: goldenAt.AddDate(10, 0, 0)},
		{File: "certs/node.ie-1.crt", TrustDomain: "prod", ChainsToCA: true, CAFile: "certs/ca.crt", Subject: "CN=ie-1,O=Clover prod", Serial: "20",
			Identity: identity.Identity{TrustDomain: "prod", Kind: identity.Node, Name: "ie-1",
				Locality: placement.Locality{Country: "IE", Region: "ie-dublin", Zone: "a"}},
			NotBefore: goldenAt, NotAfter: goldenAt.AddDate(1, 0, 0),
			DNSNames: []string{"ie-1.internal"}, IPAddresses: []string{"10.0.0.1", "::1"}, Usage: []string{"server", "client"}},
		{File: "certs/user.alice.crt", TrustDomain: "prod", ChainsToCA: false, CAFile: "certs/ca.crt", Subject: "CN=alice,O=Clover prod", Serial: "21",
			Identity: identity.Identity{TrustDomain: "prod", Kind: identity.User, Name: "alice",
				Roles: []identity.Role{identity.RoleReader, identity.RoleWriter}, Country: "IE"},
			NotBefore: goldenAt, NotAfter: goldenAt.AddDate(1, 0, 0), Usage: []string{"client"}},
		{File: "certs/esc\x1b[2J.crt", Problem: fmt.Errorf("%w: certs/esc\x1b[2J.crt holds no PEM CERTIFICATE", pki.ErrBadFile)},
		{File: "certs/node.odd.crt", ChainsToCA: false, Subject: "CN=odd", Serial: "22", NotBefore: goldenAt, NotAfter: goldenAt,
			Problem: fmt.Errorf("%w: the certificate has no Clover extension", identity.ErrNoIdentity)},
	}
	goldenCheck = client.ReplicaCheck{Shards: []client.ShardCheck{
		{ShardID: 1, Keyspace: "users", Status: "identical", Replicas: []client.ReplicaDigest{
			{Node: "ie-1", AppliedIndex: 12, Hash: 0xfedcba9876543210, Keys: 3},
			{Node: "ie-2", AppliedIndex: 11, Hash: 0xfedcba9876543210, Keys: 3}}},
		{ShardID: 2, Keyspace: "users", Status: "unreachable", Replicas: []client.ReplicaDigest{
			{Node: "no-1", Err: "unavailable"}}},
	}}
)

// goldenCases render each output shape of each command; every case is
// written in both formats to testdata/<name>.<format>.golden.
var goldenCases = []struct {
	name   string
	render func(g *globals) error
}{
	{"kv-get", func(g *globals) error { return g.showKV(goldenKVs[0]) }},
	{"kv-get-binary", func(g *globals) error { return g.showKV(goldenKVs[2]) }},
	{"kv-put", func(g *globals) error { return g.showVersion(42) }},
	{"kv-scan", func(g *globals) error { return g.showScan(goldenKVs) }},
	{"kv-scan-empty", func(g *globals) error { return g.showScan(nil) }},
	{"keyspace-show", func(g *globals) error { return g.showKeyspace(goldenKS) }},
	{"keyspace-show-bare", func(g *globals) error { return g.showKeyspace(goldenBareKS) }},
	{"keyspace-list", func(g *globals) error { return g.showKeyspaces([]client.Keyspace{goldenKS, goldenBareKS}) }},
	{"keyspace-list-empty", func(g *globals) error { return g.showKeyspaces(nil) }},
	{"keyspace-set-policy", func(g *globals) error { return g.showPolicySet(goldenKS) }},
	{"keyspace-status", func(g *globals) error { return g.showKeyspaceStatus(goldenKSStatus) }},
	{"cluster-status", func(g *globals) error { return g.showClusterStatus(goldenStatus) }},
	{"cluster-status-empty", func(g *globals) error { return g.showClusterStatus(client.ClusterStatus{}) }},
	{"placement-verify", func(g *globals) error { return g.showVerify(goldenStatus.Placement) }},
	{"placement-verify-violations", func(g *globals) error { return g.showVerify(goldenVerifyBad) }},
	{"placement-history", func(g *globals) error { return g.showHistory(goldenEvents) }},
	{"placement-history-empty", func(g *globals) error { return g.showHistory(nil) }},
	{"placement-check", func(g *globals) error { return g.showCheck(goldenCheck) }},
	{"cert-create", func(g *globals) error {
		return g.showCreated(pki.Issued{CertFile: "certs/node.ie-1.crt", KeyFile: "certs/node.ie-1.key"}, goldenCerts[1])
	}},
	{"cert-list", func(g *globals) error { return g.showCerts(goldenCerts) }},
	{"cert-list-empty", func(g *globals) error { return g.showCerts(nil) }},
	{"cert-show-ca", func(g *globals) error { return g.showCert(goldenCerts[0]) }},
	{"cert-show-user", func(g *globals) error { return g.showCert(goldenCerts[2]) }},
	{"cert-show-problem", func(g *globals) error { return g.showCert(goldenCerts[4]) }},
	{"audit-tail", func(g *globals) error { return g.showRecords(goldenRecords) }},
	{"audit-tail-empty", func(g *globals) error { return g.showRecords(nil) }},
	{"audit-incidents", func(g *globals) error { return g.showIncidents(goldenIncidents) }},
	{"audit-checkpoint", func(g *globals) error { return g.showCheckpoints(goldenCheckpoints) }},
	{"audit-verify", func(g *globals) error { return g.showAuditReport(goldenReportOK) }},
	{"audit-verify-tampered", func(g *globals) error { return g.showAuditReport(goldenReportBad) }},
}

// The output of every command, in table and JSON form, is pinned by a
// golden file: -w json is an interface scripts rely on. Run with -update
// to rewrite them after an intended change, and review the diff.
func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		for _, format := range []string{"table", "json"} {
			var out bytes.Buffer
			g := &globals{output: format, out: &out}
			if err := tc.render(g); err != nil {
				t.Fatalf("%s -w %s: %v", tc.name, format, err)
			}
			path := filepath.Join("testdata", tc.name+"."+format+".golden")
			if *update {
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("%s -w %s differs from %s:\ngot:\n%s\nwant:\n%s", tc.name, format, path, out.Bytes(), want)
			}
		}
	}
}

// Every JSON golden file follows the one convention: lowerCamelCase names,
// no null anywhere (empty lists are []), and no raw control bytes in tables.
func TestGoldenConventions(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	if err != nil || len(files) < 2*len(goldenCases) {
		t.Fatalf("golden files %v (%v): want %d", files, err, 2*len(goldenCases))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".table.golden") {
			if i := bytes.IndexFunc(b, func(r rune) bool { return r < 0x20 && r != '\n' }); i >= 0 {
				t.Errorf("%s: control byte %q at %d", f, b[i], i)
			}
			continue
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		walkJSON(t, f, "", v)
	}
}
