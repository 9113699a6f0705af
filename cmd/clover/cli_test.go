package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/internal/keys"
	"github.com/clover-kv/clover/internal/testcerts"
	"github.com/clover-kv/clover/internal/testcluster"
	"github.com/clover-kv/clover/placement"
	"github.com/clover-kv/clover/server"
)

// cli runs the clover command against one cluster and captures its output.
type cli struct {
	t         *testing.T
	endpoints string
	stdin     io.Reader
	// secure: the cluster runs in secure mode; the commands give their own
	// certificate flags. Otherwise they run with --insecure.
	secure bool
}

// with returns c reporting failures to t (a subtest).
func (c cli) with(t *testing.T) cli { c.t = t; return c }

// run executes `clover --endpoints ... args...` and returns what it printed
// to standard output and the error main would report.
func (c cli) run(args ...string) (string, error) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&errOut)
	if c.stdin != nil {
		root.SetIn(c.stdin)
	}
	pre := []string{"--endpoints", c.endpoints, "--timeout", "30s"}
	if !c.secure {
		pre = append(pre, "--insecure")
	}
	root.SetArgs(append(pre, args...))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// ok runs a command that must succeed.
func (c cli) ok(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("clover %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// fail runs a command that must fail with the given exit code.
func (c cli) fail(code int, args ...string) error {
	c.t.Helper()
	out, err := c.run(args...)
	if err == nil {
		c.t.Fatalf("clover %s succeeded, printing %q; want exit code %d", strings.Join(args, " "), out, code)
	}
	if got := exitCode(err); got != code {
		c.t.Fatalf("clover %s: exit code %d for %v, want %d", strings.Join(args, " "), got, err, code)
	}
	return err
}

// okJSON runs a command with -w json, checks that its output follows the
// JSON convention (lowerCamelCase names, no null) and decodes it into v.
func (c cli) okJSON(v any, args ...string) {
	c.t.Helper()
	out := c.ok(append(args, "-w", "json")...)
	var raw any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		c.t.Fatalf("clover %s -w json printed invalid JSON %q: %v", strings.Join(args, " "), out, err)
	}
	walkJSON(c.t, "clover "+strings.Join(args, " "), "", raw)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("clover %s -w json printed %q: %v", strings.Join(args, " "), out, err)
	}
}

var lowerCamel = regexp.MustCompile(`^[a-z][a-zA-Z0-9]*$`)

// walkJSON fails t for a null or a name that is not lowerCamelCase in v.
func walkJSON(t *testing.T, what, path string, v any) {
	t.Helper()
	switch x := v.(type) {
	case nil:
		t.Errorf("%s: %s is null", what, path)
	case map[string]any:
		for k, e := range x {
			if !lowerCamel.MatchString(k) {
				t.Errorf("%s: %s.%s is not lowerCamelCase", what, path, k)
			}
			walkJSON(t, what, path+"."+k, e)
		}
	case []any:
		for i, e := range x {
			walkJSON(t, what, path+"["+strconv.Itoa(i)+"]", e)
		}
	}
}

// The -w json shapes the tests read, named as the output names them.
type (
	ksJSON struct {
		Name   string `json:"name"`
		Policy struct {
			AllowJurisdictions []string `json:"allowJurisdictions"`
			Replicas           int      `json:"replicas"`
			DataClass          string   `json:"dataClass"`
		} `json:"policy"`
		Shards []struct {
			ID        uint64   `json:"id"`
			HashStart string   `json:"hashStart"`
			HashEnd   string   `json:"hashEnd"`
			Replicas  []string `json:"replicas"`
		} `json:"shards"`
	}
	kvJSONOut struct {
		Key     string `json:"key"`
		Value   string `json:"value"`
		Version uint64 `json:"version"`
	}
	versionJSON struct {
		Version uint64 `json:"version"`
	}
	statusJSON struct {
		MetaLeader string `json:"metaLeader"`
		Nodes      []struct {
			ID       string `json:"id"`
			Locality struct {
				Country string `json:"country"`
				Region  string `json:"region"`
				Zone    string `json:"zone"`
			} `json:"locality"`
			Jurisdictions []string `json:"jurisdictions"`
			Live          bool     `json:"live"`
			Reachable     bool     `json:"reachable"`
			Shards        []struct {
				ShardID  uint64 `json:"shardId"`
				Keyspace string `json:"keyspace"`
			} `json:"shards"`
		} `json:"nodes"`
	}
)

// nordics is an operator-defined jurisdiction every node of TestCLI knows.
var nordics = func(c *server.Config) {
	c.Jurisdictions = map[string][]string{"NORDICS": {"DK", "FI", "IS", "NO", "SE"}}
}

// TestCLI runs every command against one four-node demo cluster (two nodes in
// Ireland, one in Norway, one in the US) founded with the personal-data
// guardrail EEA, shared by the subtests to stay fast.
func TestCLI(t *testing.T) {
	tc := testcluster.Start(t, testcluster.DemoNodes(), nordics, testcluster.PersonalDataGuardrail("EEA"))
	c := cli{t: t, endpoints: strings.Join(tc.Endpoints("ie-1", "no-1"), ",")}

	// The keyspaces most subtests use; nordic lives in the operator-defined
	// jurisdiction.
	var users, nordic ksJSON
	c.okJSON(&users, "keyspace", "create", "users", "--residency", "EEA", "--replicas", "3", "--shards", "4", "--class", "personal")
	out := c.ok("keyspace", "create", "videos", "--residency", "anywhere", "--replicas", "2", "--shards", "2", "--class", "public")
	c.okJSON(&nordic, "keyspace", "create", "nordic", "--residency", "nordics", "--replicas", "1", "--shards", "1")
	waitCatalogues(t, tc, "nordic", "users", "videos")

	t.Run("keyspace create", func(t *testing.T) {
		c := c.with(t)
		if users.Name != "users" || !slices.Equal(users.Policy.AllowJurisdictions, []string{"EEA"}) ||
			users.Policy.Replicas != 3 || users.Policy.DataClass != "personal" || len(users.Shards) != 4 {
			t.Fatalf("created keyspace %+v", users)
		}
		if !slices.Equal(nordic.Policy.AllowJurisdictions, []string{"NORDICS"}) || len(nordic.Shards) != 1 ||
			!slices.Equal(nordic.Shards[0].Replicas, []string{"no-1"}) {
			t.Errorf("keyspace in the operator's jurisdiction: %+v", nordic)
		}
		for _, sh := range users.Shards {
			if len(sh.Replicas) != 3 || slices.Contains(sh.Replicas, "us-1") {
				t.Errorf("users shard %d on %v: want 3 EEA nodes", sh.ID, sh.Replicas)
			}
		}
		if !strings.HasPrefix(out, "keyspace videos: residency anywhere, class public, 2 replicas, 2 shards\n") ||
			!strings.Contains(out, "SHARD") || !strings.Contains(out, "HASH RANGE") {
			t.Errorf("create videos printed %q", out)
		}
		err := c.fail(9, "keyspace", "create", "users", "--residency", "EEA")
		if !errors.Is(err, client.ErrKeyspaceExists) {
			t.Errorf("second create: %v, want ErrKeyspaceExists", err)
		}
		c.fail(2, "keyspace", "create", "missing-residency")
		c.fail(10, "keyspace", "create", "big", "--residency", "EEA", "--replicas", "5")
	})

	// A policy flag the cluster would refuse is an invalid argument whose
	// message names the flag, never a field of the Go client.
	t.Run("policy flags", func(t *testing.T) {
		c := c.with(t)
		for _, tc := range []struct {
			args []string
			want []string
		}{
			{[]string{"--residency", "XX"}, []string{"--residency", `"XX"`, "EEA, EU, NORDICS", "ISO 3166-1 alpha-2 country code"}},
			{[]string{"--residency", "EEA,ATLANTIS"}, []string{"--residency", `"ATLANTIS"`}},
			{[]string{"--residency", "EEA", "--deny", "XX"}, []string{"--deny", `"XX"`, "ISO 3166-1"}},
			{[]string{"--residency", "EEA", "--replicas", "9"}, []string{"--replicas 9", "1 to 7"}},
			{[]string{"--residency", "EEA", "--class", "secret"}, []string{"--class", "personal or public"}},
		} {
			for _, cmd := range [][]string{{"keyspace", "create", "nowhere"}, {"keyspace", "set-policy", "users"}} {
				args := append(slices.Clone(cmd), tc.args...)
				err := c.fail(7, args...)
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%v: %q does not say %q", args, err, w)
					}
				}
				if strings.Contains(err.Error(), "AllowJurisdictions") || strings.Contains(err.Error(), "DenyCountries") {
					t.Errorf("%v: %q names a Go field", args, err)
				}
			}
		}
		// Country codes and jurisdictions mix, in any case.
		var k ksJSON
		c.okJSON(&k, "keyspace", "set-policy", "nordic", "--residency", "nordics,ie", "--deny", "se")
		if !slices.Equal(k.Policy.AllowJurisdictions, []string{"NORDICS"}) {
			t.Errorf("set-policy nordic: %+v", k)
		}
	})

	t.Run("keyspace list", func(t *testing.T) {
		c := c.with(t)
		var list []ksJSON
		c.okJSON(&list, "keyspace", "list")
		var names []string
		for _, k := range list {
			names = append(names, k.Name)
		}
		sort.Strings(names)
		if !slices.Equal(names, []string{"nordic", "users", "videos"}) {
			t.Fatalf("keyspaces %v, want nordic, users and videos", names)
		}
		table := c.ok("keyspace", "list")
		lines := strings.Split(strings.TrimSpace(table), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "NAME") {
			t.Fatalf("keyspace list table:\n%s", table)
		}
		row := fieldsOf(lines, "users")
		if row == nil || row[1] != "EEA" || row[2] != "personal" || row[3] != "3" || row[4] != "4" {
			t.Errorf("users row %q in\n%s", row, table)
		}
		if row := fieldsOf(lines, "videos"); row == nil || row[1] != "anywhere" || row[2] != "public" {
			t.Errorf("videos row %q in\n%s", row, table)
		}
	})

	t.Run("keyspace show", func(t *testing.T) {
		c := c.with(t)
		var k ksJSON
		c.okJSON(&k, "keyspace", "show", "users")
		if k.Name != "users" || len(k.Shards) != 4 {
			t.Fatalf("show users: %+v", k)
		}
		for i, sh := range k.Shards {
			r := keys.Ranges(4)[i]
			if want := [2]string{fmt.Sprintf("%016x", r.Start), fmt.Sprintf("%016x", r.End)}; [2]string{sh.HashStart, sh.HashEnd} != want {
				t.Errorf("shard %d covers %s-%s, want %s-%s", i, sh.HashStart, sh.HashEnd, want[0], want[1])
			}
		}
		table := c.ok("keyspace", "show", "users")
		lines := strings.Split(strings.TrimSpace(table), "\n")
		if len(lines) != 3+4 || !strings.HasPrefix(lines[0], "keyspace users: residency EEA, class personal, 3 replicas, 4 shards") ||
			lines[1] != "access: read roles reader (default); write roles writer (default); callers the residency (default)" ||
			!strings.HasPrefix(lines[2], "SHARD") {
			t.Fatalf("show users table:\n%s", table)
		}
		for _, l := range lines[3:] {
			if strings.Contains(l, "us-1") {
				t.Errorf("users shard row names us-1: %q", l)
			}
		}
		err := c.fail(8, "keyspace", "show", "nope")
		if !errors.Is(err, client.ErrUnknownKeyspace) {
			t.Errorf("show unknown keyspace: %v", err)
		}
	})

	t.Run("kv put get del", func(t *testing.T) {
		c := c.with(t)
		out := c.ok("kv", "put", "users", "user/1", "Aoife")
		v1, err := parseOK(out)
		if err != nil {
			t.Fatalf("put printed %q: %v", out, err)
		}
		var got kvJSONOut
		c.okJSON(&got, "kv", "get", "users", "user/1")
		if got.Key != "user/1" || got.Value != "Aoife" || got.Version != v1 {
			t.Fatalf("get: %+v, want user/1=Aoife at version %d", got, v1)
		}
		table := c.ok("kv", "get", "users", "user/1")
		if f := fieldsOf(strings.Split(table, "\n"), "user/1"); f == nil || f[1] != "Aoife" || f[2] != strconv.FormatUint(v1, 10) {
			t.Errorf("get table:\n%s", table)
		}
		if f := fieldsOf(strings.Split(c.ok("kv", "get", "users", "user/1", "--follower", "5s"), "\n"), "user/1"); f == nil || f[1] != "Aoife" {
			t.Errorf("follower get: %q", f)
		}

		// A value from standard input.
		in := c
		in.stdin = strings.NewReader("Niamh from stdin")
		var put versionJSON
		in.okJSON(&put, "kv", "put", "users", "user/2", "-")
		c.okJSON(&got, "kv", "get", "users", "user/2")
		if got.Value != "Niamh from stdin" || got.Version != put.Version || put.Version == 0 {
			t.Errorf("value from stdin: %+v, want version %d", got, put.Version)
		}

		// A value from a file, for put and cas.
		file := filepath.Join(t.TempDir(), "value.json")
		if err := os.WriteFile(file, []byte(`{"name":"Siobhán"}`+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c.okJSON(&put, "kv", "put", "users", "user/3", "--value-file", file)
		c.okJSON(&got, "kv", "get", "users", "user/3")
		if got.Value != `{"name":"Siobhán"}`+"\n" || got.Version != put.Version {
			t.Errorf("value from --value-file: %+v, want version %d", got, put.Version)
		}
		c.okJSON(&put, "kv", "cas", "users", "user/3", strconv.FormatUint(got.Version, 10), "--value-file", file)
		if put.Version <= got.Version {
			t.Errorf("cas --value-file: version %d after %d", put.Version, got.Version)
		}

		out = c.ok("kv", "del", "users", "user/2")
		if _, err := parseOK(out); err != nil {
			t.Errorf("del printed %q: %v", out, err)
		}
		err = c.fail(4, "kv", "get", "users", "user/2")
		if !errors.Is(err, client.ErrNotFound) {
			t.Errorf("get deleted key: %v, want ErrNotFound", err)
		}
		c.fail(4, "kv", "get", "users", "never-written")
		c.fail(8, "kv", "get", "nope", "k")
		c.fail(8, "kv", "put", "nope", "k", "v")
		c.fail(2, "kv", "get", "users")
		c.fail(7, "kv", "put", "users", "", "v")
		c.fail(7, "kv", "put", "users", strings.Repeat("k", keys.MaxKeyBytes+1), "v")
	})

	// Keys and values that are not printable text are quoted in tables, so
	// that no byte reaches the terminal as a control sequence.
	t.Run("kv table escapes", func(t *testing.T) {
		c := c.with(t)
		key, value := "esc/\x1b[2J\tred", "line 1\nline 2\x07"
		c.ok("kv", "put", "users", key, value)
		c.ok("kv", "put", "users", "esc/\xff", "\xff")
		for _, tc := range []struct {
			args  []string
			lines int // the header and a line per key
		}{{[]string{"kv", "get", "users", key}, 2}, {[]string{"kv", "scan", "users", "--prefix", "esc/"}, 3}} {
			args := tc.args
			out := c.ok(args...)
			if strings.ContainsAny(out, "\x1b\t\x07\x00") || strings.Count(out, "\n") != tc.lines {
				t.Errorf("%v printed raw control bytes or extra lines: %q", args, out)
			}
			if !strings.Contains(out, `"esc/\x1b[2J\tred"`) || !strings.Contains(out, `"line 1\nline 2\a"`) {
				t.Errorf("%v: key and value not quoted: %q", args, out)
			}
		}
		if out := c.ok("kv", "get", "users", "esc/\xff"); !strings.Contains(out, `"esc/\xff"`) || !strings.Contains(out, `"\xff"`) {
			t.Errorf("binary key: %q", out)
		}
		var got struct {
			KeyBase64   string `json:"keyBase64"`
			ValueBase64 string `json:"valueBase64"`
		}
		c.okJSON(&got, "kv", "get", "users", "esc/\xff")
		if got.KeyBase64 != "ZXNjL/8=" || got.ValueBase64 != "/w==" {
			t.Errorf("binary key in JSON: %+v", got)
		}
	})

	t.Run("kv cas", func(t *testing.T) {
		c := c.with(t)
		var got struct {
			Value   string
			Version uint64
		}
		v0, err := parseOK(c.ok("kv", "cas", "users", "cas/1", "0", "first"))
		if err != nil {
			t.Fatal(err)
		}
		// The key exists now: a second create-if-absent fails.
		err = c.fail(6, "kv", "cas", "users", "cas/1", "0", "again")
		var ce *client.Error
		if !errors.Is(err, client.ErrVersionMismatch) || !errors.As(err, &ce) || ce.CurrentVersion != v0 {
			t.Fatalf("cas on an existing key: %v (%+v), want a mismatch naming version %d", err, ce, v0)
		}
		err = c.fail(6, "kv", "cas", "users", "cas/1", strconv.FormatUint(v0+1000, 10), "stale")
		if !errors.Is(err, client.ErrVersionMismatch) {
			t.Fatalf("cas with a wrong version: %v", err)
		}
		var cas versionJSON
		c.okJSON(&cas, "kv", "cas", "users", "cas/1", strconv.FormatUint(v0, 10), "second")
		c.okJSON(&got, "kv", "get", "users", "cas/1")
		if got.Value != "second" || got.Version != cas.Version || cas.Version <= v0 {
			t.Fatalf("after cas: %+v, cas version %d, first version %d", got, cas.Version, v0)
		}
		c.fail(2, "kv", "cas", "users", "cas/1", "latest", "x")
	})

	t.Run("kv scan", func(t *testing.T) {
		c := c.with(t)
		// Twenty keys under one prefix, spread over the four shards, plus
		// keys that sort before and after them.
		var want []string
		shards := map[int]bool{}
		for i := 19; i >= 0; i-- {
			k := fmt.Sprintf("scan/%02d", i)
			want = append(want, k)
			shards[keys.ShardIndex(keys.Hash([]byte(k)), 4)] = true
			c.ok("kv", "put", "users", k, "v"+k[5:])
		}
		c.ok("kv", "put", "users", "scam", "before")
		c.ok("kv", "put", "users", "scan0", "after")
		sort.Strings(want)
		if len(shards) < 2 {
			t.Fatalf("test keys fall in %d shard(s); want them spread", len(shards))
		}

		var kvs []kvJSONOut
		c.okJSON(&kvs, "kv", "scan", "users", "--prefix", "scan/")
		var gotKeys []string
		for _, kv := range kvs {
			gotKeys = append(gotKeys, kv.Key)
			if kv.Value != "v"+kv.Key[5:] || kv.Version == 0 {
				t.Errorf("scan: %+v", kv)
			}
		}
		if !slices.Equal(gotKeys, want) {
			t.Fatalf("scan --prefix scan/ keys %v, want %v", gotKeys, want)
		}

		c.okJSON(&kvs, "kv", "scan", "users", "--prefix", "scan/", "--limit", "5", "--keys-only")
		if len(kvs) != 5 || kvs[0].Key != "scan/00" || kvs[4].Key != "scan/04" || kvs[0].Value != "" {
			t.Errorf("scan --limit 5 --keys-only: %+v", kvs)
		}
		c.okJSON(&kvs, "kv", "scan", "users", "--start", "scan/05", "--end", "scan/10")
		if len(kvs) != 5 || kvs[0].Key != "scan/05" || kvs[4].Key != "scan/09" {
			t.Errorf("scan --start scan/05 --end scan/10: %+v", kvs)
		}

		table := c.ok("kv", "scan", "users", "--prefix", "scan/")
		lines := strings.Split(strings.TrimSpace(table), "\n")
		if len(lines) != 21 || !strings.HasPrefix(lines[0], "KEY") {
			t.Fatalf("scan table:\n%s", table)
		}
		for i, l := range lines[1:] {
			if f := strings.Fields(l); f[0] != want[i] {
				t.Errorf("scan table row %d is %q, want key %s", i, l, want[i])
			}
		}
		c.fail(2, "kv", "scan", "users", "--limit", "0")
		if out := c.ok("kv", "scan", "users", "--prefix", "nothing/", "-w", "json"); out != "[]\n" {
			t.Errorf("empty scan -w json printed %q, want []", out)
		}
	})

	t.Run("cluster status", func(t *testing.T) {
		c := c.with(t)
		var st statusJSON
		tc.WaitFor(20*time.Second, "four live nodes in cluster status", func() bool {
			c.okJSON(&st, "cluster", "status")
			live := 0
			for _, n := range st.Nodes {
				if n.Live && n.Reachable {
					live++
				}
			}
			return len(st.Nodes) == 4 && live == 4
		})
		// scripts/demo.sh counts live nodes so.
		if out := c.ok("cluster", "status", "-w", "json"); strings.Count(out, `"live": true`) != 4 {
			t.Errorf("cluster status -w json: want 4 times \"live\": true in\n%s", out)
		}
		byID := map[string]int{}
		for i, n := range st.Nodes {
			byID[n.ID] = i
		}
		has := func(id string, js ...string) bool {
			got := slices.Clone(st.Nodes[byID[id]].Jurisdictions)
			sort.Strings(got)
			return slices.Equal(got, js)
		}
		if !has("ie-1", "EEA", "EU") || !has("ie-2", "EEA", "EU") || !has("no-1", "EEA", "NORDICS") || !has("us-1") {
			t.Errorf("jurisdictions: %+v", st.Nodes)
		}
		if l := st.Nodes[byID["no-1"]].Locality; l.Country != "NO" || l.Region != "no-hamar" || l.Zone != "a" {
			t.Errorf("no-1 locality %+v", l)
		}
		if _, ok := byID[st.MetaLeader]; !ok {
			t.Errorf("meta leader %q is not a node", st.MetaLeader)
		}
		for _, r := range st.Nodes[byID["us-1"]].Shards {
			if r.Keyspace == "users" {
				t.Errorf("us-1 holds users shard %d", r.ShardID)
			}
		}

		table := c.ok("cluster", "status")
		lines := strings.Split(strings.TrimSpace(table), "\n")
		if len(lines) != 8 || !strings.HasPrefix(lines[0], "NODE") || lines[5] != "* meta-group leader" ||
			lines[6] != "personal-data guardrail: EEA" || !strings.HasPrefix(lines[7], "insecure mode:") {
			t.Fatalf("status table:\n%s", table)
		}
		if f := fieldsOf(lines, "us-1"); f == nil || f[1] != "US/us-east/a" || f[2] != "live" {
			// us-1 has no jurisdiction, so its row has one column fewer.
			t.Errorf("us-1 row %q", f)
		}
		if f := fieldsOf(lines, "ie-1"); f == nil || f[1] != "IE/ie-dublin/a" || f[2] != "EEA,EU" {
			t.Errorf("ie-1 row %q", f)
		}
	})

	t.Run("keyspace status and placement history", func(t *testing.T) {
		c := c.with(t)
		var st struct {
			Name       string `json:"name"`
			Conforming int    `json:"conforming"`
			Shards     []struct {
				ShardID uint64 `json:"shardId"`
				Status  string `json:"status"`
			} `json:"shards"`
		}
		c.okJSON(&st, "keyspace", "status", "users")
		if st.Name != "users" || len(st.Shards) != 4 {
			t.Errorf("keyspace status users: %+v", st)
		}
		var evs []struct {
			UnixMs   int64  `json:"unixMs"`
			Keyspace string `json:"keyspace"`
			Action   string `json:"action"`
		}
		c.okJSON(&evs, "placement", "history", "--keyspace", "users")
		if len(evs) == 0 {
			t.Error("placement history of users is empty")
		}
		for _, e := range evs {
			if e.Keyspace != "users" || e.Action == "" || e.UnixMs <= 0 {
				t.Errorf("placement history event %+v", e)
			}
		}
		if out := c.ok("placement", "history", "--keyspace", "none", "-w", "json"); out != "[]\n" {
			t.Errorf("empty placement history -w json printed %q, want []", out)
		}
		c.fail(8, "keyspace", "status", "nope")
	})

	t.Run("placement check", func(t *testing.T) {
		out := c.ok("placement", "check", "--keyspace", "users")
		lines := strings.Split(out, "\n")
		rows := 0
		for _, l := range lines {
			if f := strings.Fields(l); len(f) == 7 && f[0] == "users" {
				rows++
				if f[2] != "identical" {
					t.Errorf("row %q: want identical", l)
				}
			}
		}
		if rows == 0 || !strings.Contains(out, "0 not identical") {
			t.Errorf("placement check printed %q", out)
		}
		var rep struct {
			OK     bool `json:"ok"`
			Shards []struct {
				Status string `json:"status"`
			} `json:"shards"`
		}
		c.okJSON(&rep, "placement", "check")
		if !rep.OK || len(rep.Shards) == 0 {
			t.Errorf("placement check -w json: %+v", rep)
		}
		c.fail(8, "placement", "check", "--keyspace", "nope")
	})

	t.Run("residency refusal", func(t *testing.T) {
		us := c.with(t)
		us.endpoints = tc.Node("us-1").GRPCAddr()
		for _, args := range [][]string{
			{"--direct", "kv", "get", "users", "user/1"},
			{"--direct", "kv", "put", "users", "user/9", "x"},
			{"--direct", "kv", "scan", "users"},
		} {
			err := us.fail(3, args...)
			var ce *client.Error
			if !errors.Is(err, client.ErrResidency) || !errors.As(err, &ce) {
				t.Fatalf("%v: %v, want ErrResidency", args, err)
			}
			if len(ce.PermittedEndpoints) != 3 || slices.Contains(ce.PermittedEndpoints, tc.Node("us-1").GRPCAddr()) {
				t.Errorf("%v: permitted endpoints %v, want the three EEA nodes", args, ce.PermittedEndpoints)
			}
			if strings.Contains(err.Error(), "user/") {
				t.Errorf("%v: the error names the key: %v", args, err)
			}
		}
		// The US node serves the public keyspace.
		us.ok("--direct", "kv", "put", "videos", "video/1", "cat")
		var got kvJSONOut
		us.okJSON(&got, "--direct", "kv", "get", "videos", "video/1")
		if got.Value != "cat" {
			t.Errorf("US read of videos: %q", got.Value)
		}
	})

	// The access policy's flags round-trip through create, show and
	// set-policy, which keeps what it is not given; bad values name the flag.
	t.Run("access policy", func(t *testing.T) {
		c := c.with(t)
		type access struct {
			ReadRoles           []string `json:"readRoles"`
			WriteRoles          []string `json:"writeRoles"`
			CallerJurisdictions []string `json:"callerJurisdictions"`
			CallerCountries     []string `json:"callerCountries"`
			CallerAnywhere      bool     `json:"callerAnywhere"`
		}
		var k struct {
			Policy access `json:"policy"`
		}
		check := func(what string, want access) {
			t.Helper()
			if !reflect.DeepEqual(k.Policy, want) {
				t.Errorf("%s: access policy %+v, want %+v", what, k.Policy, want)
			}
		}
		nordicsIE := access{ReadRoles: []string{"reader", "admin"}, WriteRoles: []string{"writer"},
			CallerJurisdictions: []string{"NORDICS", "IE"}, CallerCountries: []string{"DK", "FI", "IE", "IS", "NO", "SE"}}
		c.okJSON(&k, "keyspace", "create", "orders", "--residency", "EEA", "--replicas", "1", "--shards", "1",
			"--read-roles", "Reader,admin", "--write-roles", "writer", "--caller-jurisdictions", "nordics,ie")
		check("create", nordicsIE)
		c.okJSON(&k, "keyspace", "show", "orders")
		check("show", nordicsIE)
		if lines := strings.Split(c.ok("keyspace", "show", "orders"), "\n"); lines[1] != "access: read roles reader,admin; write roles writer; callers NORDICS,IE (6 countries)" {
			t.Errorf("show orders: access line %q", lines[1])
		}
		c.okJSON(&k, "keyspace", "set-policy", "orders", "--residency", "nordics,ie")
		check("set-policy without access flags", nordicsIE)
		c.okJSON(&k, "keyspace", "set-policy", "orders", "--residency", "EEA", "--caller-jurisdictions", "ie")
		check("set-policy --caller-jurisdictions ie", access{ReadRoles: nordicsIE.ReadRoles, WriteRoles: nordicsIE.WriteRoles,
			CallerJurisdictions: []string{"IE"}, CallerCountries: []string{"IE"}})
		c.okJSON(&k, "keyspace", "set-policy", "orders", "--residency", "EEA", "--read-roles", "", "--caller-jurisdictions", "")
		eea, _ := placement.DefaultCatalogue().Countries(placement.EEA)
		check("set-policy restoring defaults", access{ReadRoles: []string{}, WriteRoles: nordicsIE.WriteRoles,
			CallerJurisdictions: []string{}, CallerCountries: eea})
		for _, tc := range []struct {
			args []string
			want []string
		}{
			{[]string{"--read-roles", "reader,auditor"}, []string{"--read-roles", `"auditor"`, "never reads or writes"}},
			{[]string{"--write-roles", "owner"}, []string{"--write-roles", `"owner"`, "reader, writer or admin"}},
			{[]string{"--caller-jurisdictions", "XX"}, []string{"--caller-jurisdictions", `"XX"`, "EEA, EU, NORDICS"}},
			{[]string{"--caller-jurisdictions", "EEA,anywhere"}, []string{"--caller-jurisdictions", "cannot be combined"}},
		} {
			for _, cmd := range [][]string{{"keyspace", "create", "nowhere", "--residency", "EEA"}, {"keyspace", "set-policy", "orders", "--residency", "EEA"}} {
				args := append(slices.Clone(cmd), tc.args...)
				err := c.fail(7, args...)
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%v: %q does not say %q", args, err, w)
					}
				}
			}
		}
		c.ok("keyspace", "drop", "orders")
	})

	// The cluster was founded with the guardrail EEA: no personal keyspace
	// leaves it, and cluster status says so.
	t.Run("personal-data guardrail", func(t *testing.T) {
		c := c.with(t)
		for _, args := range [][]string{
			{"keyspace", "create", "outside", "--residency", "anywhere", "--replicas", "1"},
			{"keyspace", "create", "outside", "--residency", "EEA,US", "--replicas", "1"},
			{"keyspace", "create", "outside", "--residency", "EEA", "--replicas", "1", "--caller-jurisdictions", "anywhere"},
			{"keyspace", "set-policy", "users", "--residency", "anywhere"},
			{"keyspace", "set-policy", "users", "--residency", "EEA,US"},
			{"keyspace", "set-policy", "users", "--residency", "EEA", "--caller-jurisdictions", "EEA,CN"},
			{"keyspace", "set-policy", "users", "--residency", "EEA", "--class", "public"},
		} {
			err := c.fail(11, args...)
			var ce *client.Error
			if !errors.Is(err, client.ErrPermissionDenied) || !errors.As(err, &ce) || ce.Rule != "personal-data-guardrail" ||
				!strings.Contains(err.Error(), "rule personal-data-guardrail") {
				t.Errorf("%v: %v, want a refusal by rule personal-data-guardrail", args, err)
			}
		}
		var k ksJSON
		c.okJSON(&k, "keyspace", "show", "users")
		if !slices.Equal(k.Policy.AllowJurisdictions, []string{"EEA"}) || k.Policy.DataClass != "personal" {
			t.Errorf("users after refused changes: %+v", k.Policy)
		}
		var st struct {
			PersonalDataJurisdiction string `json:"personalDataJurisdiction"`
		}
		c.okJSON(&st, "cluster", "status")
		if st.PersonalDataJurisdiction != "EEA" {
			t.Errorf("cluster status -w json: personalDataJurisdiction %q, want EEA", st.PersonalDataJurisdiction)
		}
	})

	t.Run("usage errors", func(t *testing.T) {
		c := c.with(t)
		err := c.fail(2, "keyspace", "list", "-w", "yaml")
		if !strings.Contains(err.Error(), "--output") {
			t.Errorf("bad --output: %v", err)
		}
		c.fail(2, "--output", "xml", "cluster", "status")
		c.fail(2, "kv", "frobnicate")
		c.fail(2, "frobnicate")
		c.fail(2, "kv", "get", "--no-such-flag", "users", "k")
		c.fail(2, "cluster", "status", "extra")
		out := c.ok("kv")
		if !strings.Contains(out, "Available Commands") {
			t.Errorf("clover kv printed %q, want its help", out)
		}
	})

	t.Run("keyspace drop", func(t *testing.T) {
		c := c.with(t)
		if out := c.ok("keyspace", "drop", "videos"); out != "dropped videos\n" {
			t.Errorf("drop printed %q", out)
		}
		err := c.fail(8, "keyspace", "drop", "videos")
		if !errors.Is(err, client.ErrUnknownKeyspace) {
			t.Errorf("second drop: %v", err)
		}
		waitCatalogues(t, tc, "nordic", "users")
		err = c.fail(8, "kv", "get", "videos", "video/1")
		if !errors.Is(err, client.ErrUnknownKeyspace) {
			t.Errorf("get from a dropped keyspace: %v", err)
		}
	})
}

// waitCatalogues waits until every node lists exactly the given keyspaces
// (asked directly, so each node answers from its own copy of the catalogue).
func waitCatalogues(t *testing.T, tc *testcluster.Cluster, want ...string) {
	t.Helper()
	for _, n := range tc.Nodes {
		direct := cli{t: t, endpoints: n.GRPCAddr()}
		var names []string
		tc.WaitFor(20*time.Second, n.Spec.ID+" listing keyspaces "+strings.Join(want, ","), func() bool {
			var list []ksJSON
			direct.okJSON(&list, "--direct", "keyspace", "list")
			names = names[:0]
			for _, k := range list {
				names = append(names, k.Name)
			}
			sort.Strings(names)
			return slices.Equal(names, want)
		})
	}
}

// TestCommandsWithoutCluster covers what fails before any contact with a node.
func TestCommandsWithoutCluster(t *testing.T) {
	c := cli{t: t, endpoints: "127.0.0.1:1"}
	small := filepath.Join(t.TempDir(), "small")
	if err := os.WriteFile(small, []byte("v"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-w", "yaml", "kv", "get", "users", "k"},
		{"kv", "cas", "users", "k", "latest", "v"},
		{"kv", "put", "users", "k"},
		{"kv", "put", "users", "k", "v", "--value-file", small},
		{"kv", "put", "users", "k", "--value-file", filepath.Join(t.TempDir(), "missing")},
		{"keyspace", "create"},
		{"nope"},
	} {
		c.fail(2, args...)
	}
	out := c.ok("--help")
	if !strings.Contains(out, "keyspace") || !strings.Contains(out, "--endpoints") {
		t.Errorf("--help printed %q", out)
	}
	if out := c.ok("--version"); !strings.HasPrefix(out, "clover ") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("--version printed %q, want clover, the version, the Go version", out)
	}
}

// A value over the limit is refused before anything is sent, and its size
// is given only when it is known: standard input is read one byte past the
// limit and no further.
func TestValueOverLimit(t *testing.T) {
	c := cli{t: t, endpoints: "127.0.0.1:1"}
	big := bytes.Repeat([]byte("x"), 2<<20)
	file := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(file, big, 0o600); err != nil {
		t.Fatal(err)
	}
	in := c
	in.stdin = bytes.NewReader(big)
	err := in.fail(7, "kv", "put", "users", "k", "-")
	if !strings.Contains(err.Error(), "standard input is over the limit of 1048576 bytes") || strings.Contains(err.Error(), "1048577") {
		t.Errorf("2 MiB on standard input: %v", err)
	}
	err = c.fail(7, "kv", "put", "users", "k", "--value-file", file)
	if !strings.Contains(err.Error(), "is 2097152 bytes, over the limit of 1048576 bytes") {
		t.Errorf("2 MiB --value-file: %v", err)
	}
	in.stdin = bytes.NewReader(big)
	in.fail(7, "kv", "cas", "users", "k", "0", "-")
}

// clover --help lists every exit code, and each command group's summary
// names all its subcommands (as shown by clover --help).
func TestHelp(t *testing.T) {
	c := cli{t: t, endpoints: "127.0.0.1:1"}
	out := c.ok("--help")
	for _, want := range []string{"Exit codes:", "  0   success", "  1   an error", "  2   usage", "  3   residency", "  4   not found",
		"  5   placement violation", "  6   version mismatch", "  7   invalid argument", "  8   unknown keyspace",
		"  9   keyspace exists", "  10  cannot place", "  11  permission denied", "  12  outcome unknown", "  13  unavailable", "  14  tampering detected"} {
		if !strings.Contains(out, want) {
			t.Errorf("clover --help does not list %q:\n%s", want, out)
		}
	}
	for _, group := range newRootCmd().Commands() {
		for _, sub := range group.Commands() {
			if !strings.Contains(group.Short, sub.Name()) {
				t.Errorf("%s: summary %q does not name %s", group.Name(), group.Short, sub.Name())
			}
		}
	}
	if out := c.ok("placement", "--help"); !strings.Contains(out, "check") {
		t.Errorf("clover placement --help:\n%s", out)
	}
}

// parseOK reads "OK version N".
func parseOK(out string) (uint64, error) {
	s, ok := strings.CutPrefix(strings.TrimSpace(out), "OK version ")
	if !ok {
		return 0, fmt.Errorf("not OK version N")
	}
	return strconv.ParseUint(s, 10, 64)
}

// fieldsOf returns the whitespace-separated fields of the table line whose
// first field is first, or nil.
func fieldsOf(lines []string, first string) []string {
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) > 0 && strings.TrimSuffix(f[0], "*") == first {
			return f
		}
	}
	return nil
}

// Against a cluster in secure mode the CLI connects with --tls-cert,
// --tls-key and --tls-ca; without them, or with --insecure, it cannot; with
// only some of them it is a usage error.
func TestCLIOverTLS(t *testing.T) {
	p := testcerts.NewPKI(t, "cli-test")
	tc := testcluster.Start(t, testcluster.DemoNodes()[:3], testcluster.Secure(t, p))
	op := p.User(t, "operator", "admin,auditor", "IE")
	c := cli{t: t, endpoints: strings.Join(tc.Endpoints(), ","), secure: true}
	tlsArgs := []string{"--tls-cert", op.Cert, "--tls-key", op.Key, "--tls-ca", op.CA}
	if out := c.ok(append(tlsArgs, "cluster", "status")...); !strings.Contains(out, "ie-1") || !strings.Contains(out, "no-1") {
		t.Fatalf("cluster status over TLS printed %q", out)
	}
	if out := c.ok(append(tlsArgs, "whoami")...); !strings.Contains(out, "operator") || !strings.Contains(out, "admin,auditor") {
		t.Fatalf("whoami printed %q", out)
	}
	err := c.fail(2, "--timeout", "2s", "cluster", "status")
	if !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("no certificate: %v", err)
	}
	c.fail(13, "--timeout", "2s", "--insecure", "cluster", "status")
	err = c.fail(2, "--tls-cert", op.Cert, "cluster", "status")
	if !strings.Contains(err.Error(), "missing [key CA bundle]") {
		t.Fatalf("partial TLS flags: %v", err)
	}
}
