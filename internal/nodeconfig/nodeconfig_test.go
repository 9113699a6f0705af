package nodeconfig_test

import (
	"crypto/tls"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clover-kv/clover/internal/nodeconfig"
	"github.com/clover-kv/clover/internal/testcerts"
	"github.com/clover-kv/clover/placement"
	"github.com/clover-kv/clover/server"
)

// env is a fake environment: Load reads it through its lookup function, so
// the tests never touch the process environment.
type env map[string]string

// lookup reads e. The tests' nodes run in insecure mode unless a test
// sets CLOVER_INSECURE itself.
func (e env) lookup(name string) (string, bool) {
	v, ok := e[name]
	if !ok && name == "CLOVER_INSECURE" {
		return "true", true
	}
	return v, ok
}

// writeFile writes a YAML config file and returns its path.
func writeFile(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cloverd.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// required are flags for the settings Load insists on.
var required = map[string]string{
	"node-id":  "ie-1",
	"locality": "country=IE,region=ie-dublin,zone=a",
	"data-dir": "/var/lib/clover",
}

// precedenceCase is one setting with a distinct value for each source.
type precedenceCase struct {
	name      string
	flag, env string // values for --name=... and CLOVER_NAME
	file      string // YAML value for the file key
	fileWant  string // what get returns for the file value
	def       string // what get returns by default; "" = required setting
	get       func(server.Config, nodeconfig.Options) string
	flagWant  string // what get returns for the flag value, if not flag
	envWant   string // what get returns for the env value, if not env
}

func TestPrecedenceFlagEnvFileDefault(t *testing.T) {
	cases := []precedenceCase{
		{name: "node-id", flag: "from-flag", env: "from-env", file: "from-file", fileWant: "from-file",
			get: func(c server.Config, _ nodeconfig.Options) string { return c.NodeID }},
		{name: "data-dir", flag: "/flag", env: "/env", file: "/file", fileWant: "/file",
			get: func(c server.Config, _ nodeconfig.Options) string { return c.DataDir }},
		{name: "locality", flag: "country=IE,region=ie-dublin", env: "country=no,region=no-hamar", envWant: "country=NO,region=no-hamar",
			file: "{country: DE, region: de-berlin, zone: b}", fileWant: "country=DE,region=de-berlin,zone=b",
			get: func(c server.Config, _ nodeconfig.Options) string { return c.Locality.String() }},
		{name: "listen-grpc", flag: "127.0.0.1:1001", env: "127.0.0.1:1002", file: "'127.0.0.1:1003'", fileWant: "127.0.0.1:1003",
			def: "127.0.0.1:7400", get: func(c server.Config, _ nodeconfig.Options) string { return c.ListenGRPC }},
		{name: "join", flag: "10.0.0.1:7600,10.0.0.2:7600", env: "10.0.0.3:7600, 10.0.0.4:7600", envWant: "10.0.0.3:7600|10.0.0.4:7600",
			file: "['10.0.0.5:7600']", fileWant: "10.0.0.5:7600", flagWant: "10.0.0.1:7600|10.0.0.2:7600", def: "",
			get: func(c server.Config, _ nodeconfig.Options) string { return strings.Join(c.Join, "|") }},
		{name: "meta-voters", flag: "5", env: "1", file: "7", fileWant: "7", def: "3",
			get: func(c server.Config, _ nodeconfig.Options) string { return itoa(c.MetaVoters) }},
		{name: "raft-heartbeat-timeout", flag: "600ms", env: "2s", envWant: "2s", file: "3s", fileWant: "3s", def: "1s",
			get: func(c server.Config, _ nodeconfig.Options) string { return c.Raft.HeartbeatTimeout.String() }},
		{name: "raft-commit-timeout", flag: "5ms", env: "7ms", file: "9ms", fileWant: "9ms", def: "1s",
			get: func(c server.Config, _ nodeconfig.Options) string { return c.Raft.CommitTimeout.String() }},
		{name: "raft-group-commit-window", flag: "2ms", env: "0s", envWant: "0s", file: "500us", fileWant: "500µs", def: "1ms",
			get: func(c server.Config, _ nodeconfig.Options) string { return c.Raft.GroupCommitWindow.String() }},
		{name: "grpc-keepalive-time", flag: "15s", env: "20s", file: "1m", fileWant: "1m0s", def: "10s",
			get: func(c server.Config, _ nodeconfig.Options) string { return c.KeepaliveTime.String() }},
		{name: "grpc-keepalive-timeout", flag: "2s", env: "3s", file: "500ms", fileWant: "500ms", def: "5s",
			get: func(c server.Config, _ nodeconfig.Options) string { return c.KeepaliveTimeout.String() }},
		{name: "grpc-keepalive-min-time", flag: "1s", env: "2s", file: "10s", fileWant: "10s", def: "5s",
			get: func(c server.Config, _ nodeconfig.Options) string { return c.KeepaliveMinTime.String() }},
		{name: "max-connections", flag: "100", env: "200", file: "300", fileWant: "300", def: "4096",
			get: func(c server.Config, _ nodeconfig.Options) string { return itoa(c.MaxConnections) }},
		{name: "grpc-handshake-timeout", flag: "2s", env: "3s", file: "1m", fileWant: "1m0s", def: "10s",
			get: func(c server.Config, _ nodeconfig.Options) string { return c.HandshakeTimeout.String() }},
		{name: "grpc-max-concurrent-streams", flag: "10", env: "20", file: "4294967295", fileWant: "4294967295", def: "1024",
			get: func(c server.Config, _ nodeconfig.Options) string {
				return strconv.FormatUint(uint64(c.MaxConcurrentStreams), 10)
			}},
		{name: "request-rate", flag: "2.5", env: "0", file: "1e3", fileWant: "1000", def: "100000",
			get: func(c server.Config, _ nodeconfig.Options) string {
				return strconv.FormatFloat(c.RequestRate, 'f', -1, 64)
			}},
		{name: "request-burst", flag: "5", env: "50", file: "500", fileWant: "500", def: "200000",
			get: func(c server.Config, _ nodeconfig.Options) string { return itoa(c.RequestBurst) }},
		{name: "raft-snapshot-threshold", flag: "100", env: "200", file: "300", fileWant: "300", def: "16384",
			get: func(c server.Config, _ nodeconfig.Options) string { return itoa(int(c.Raft.SnapshotThreshold)) }},
		{name: "cache-size-mb", flag: "32", env: "512", file: "1024", fileWant: "1024", def: "256",
			get: func(c server.Config, _ nodeconfig.Options) string { return itoa(int(c.CacheSize >> 20)) }},
		{name: "log-level", flag: "debug", env: "warn", file: "error", fileWant: "error", def: "info",
			get: func(_ server.Config, o nodeconfig.Options) string { return o.LogLevel }},
		{name: "log-format", flag: "json", env: "text", file: "json", fileWant: "json", def: "text",
			get: func(_ server.Config, o nodeconfig.Options) string { return o.LogFormat }},
		{name: "advertise-raft", flag: "10.1.1.1:7500", env: "10.1.1.2:7500", file: "'10.1.1.3:7500'", fileWant: "10.1.1.3:7500", def: "",
			get: func(c server.Config, _ nodeconfig.Options) string { return c.AdvertiseRaft }},
	}
	for _, tc := range cases {
		_, isRequired := required[tc.name]
		// Every subset of the three sources: bit 0 flag, bit 1 env, bit 2 file.
		for mask := 0; mask < 8; mask++ {
			useFlag, useEnv, useFile := mask&1 != 0, mask&2 != 0, mask&4 != 0
			if mask == 0 && isRequired {
				continue // covered by TestErrors
			}
			label := tc.name + "/" + sources(useFlag, useEnv, useFile)
			t.Run(label, func(t *testing.T) {
				var args []string
				for k, v := range required {
					if k != tc.name {
						args = append(args, "--"+k+"="+v)
					}
				}
				e := env{}
				if useFlag {
					args = append(args, "--"+tc.name+"="+tc.flag)
				}
				if useEnv {
					e[envVar(tc.name)] = tc.env
				}
				if useFile {
					args = append(args, "--config="+writeFile(t, tc.name+": "+tc.file+"\n"))
				}
				cfg, opts, err := nodeconfig.Load(args, e.lookup)
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				var want string
				switch {
				case useFlag:
					want = or(tc.flagWant, tc.flag)
				case useEnv:
					want = or(tc.envWant, tc.env)
				case useFile:
					want = tc.fileWant
				default:
					want = tc.def
				}
				if got := tc.get(cfg, opts); got != want {
					t.Errorf("%s from %s: got %q, want %q", tc.name, sources(useFlag, useEnv, useFile), got, want)
				}
			})
		}
	}
}

func envVar(name string) string {
	return "CLOVER_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

func sources(flag, env, file bool) string {
	var s []string
	if flag {
		s = append(s, "flag")
	}
	if env {
		s = append(s, "env")
	}
	if file {
		s = append(s, "file")
	}
	if len(s) == 0 {
		return "default"
	}
	return strings.Join(s, "+")
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func itoa(n int) string { return strconv.Itoa(n) }

// A whole node configured from a file alone, with the locality as a string
// and as a map, and every kind of value (string, bool, list, int, duration).
func TestFile(t *testing.T) {
	cases := []struct {
		name     string
		yaml     string
		locality placement.Locality
	}{
		{"locality as a string", "locality: country=IE,region=ie-dublin,zone=a\n",
			placement.Locality{Country: "IE", Region: "ie-dublin", Zone: "a"}},
		{"locality as a map", "locality:\n  country: NO\n  region: no-hamar\n  zone: b\n",
			placement.Locality{Country: "NO", Region: "no-hamar", Zone: "b"}},
		{"locality map with the country only", "locality: {country: us}\n",
			placement.Locality{Country: "US"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "node-id: n-1\ndata-dir: /data\n"+tc.yaml+
				"bootstrap: true\njoin: ['10.0.0.1:7600', '10.0.0.2:7600']\nmeta-voters: 5\n"+
				"raft-election-timeout: 750ms\nlisten-gossip: 0.0.0.0:7601\nlog-format: json\n")
			cfg, opts, err := nodeconfig.Load(nil, env{"CLOVER_CONFIG": path}.lookup)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if cfg.Locality != tc.locality {
				t.Errorf("locality %+v, want %+v", cfg.Locality, tc.locality)
			}
			if cfg.NodeID != "n-1" || cfg.DataDir != "/data" || !cfg.Bootstrap || cfg.MetaVoters != 5 ||
				cfg.Raft.ElectionTimeout != 750*time.Millisecond || cfg.ListenGossip != "0.0.0.0:7601" ||
				!reflect.DeepEqual(cfg.Join, []string{"10.0.0.1:7600", "10.0.0.2:7600"}) || opts.LogFormat != "json" {
				t.Errorf("config from file: %+v %+v", cfg, opts)
			}
			// Untouched settings keep their defaults.
			def := server.DefaultConfig()
			if cfg.ListenGRPC != def.ListenGRPC || cfg.Raft.HeartbeatTimeout != def.Raft.HeartbeatTimeout || opts.LogLevel != "info" {
				t.Errorf("defaults lost: grpc %q heartbeat %v level %q", cfg.ListenGRPC, cfg.Raft.HeartbeatTimeout, opts.LogLevel)
			}
		})
	}
}

// --config wins over CLOVER_CONFIG; an empty file is allowed.
func TestConfigFileChoice(t *testing.T) {
	flagFile := writeFile(t, "node-id: from-flag-file\n")
	envFile := writeFile(t, "node-id: from-env-file\n")
	base := []string{"--locality=country=IE", "--data-dir=/d"}
	e := env{"CLOVER_CONFIG": envFile}

	cfg, _, err := nodeconfig.Load(append(base, "--config", flagFile), e.lookup)
	if err != nil || cfg.NodeID != "from-flag-file" {
		t.Fatalf("--config: node %q, err %v", cfg.NodeID, err)
	}
	cfg, _, err = nodeconfig.Load(base, e.lookup)
	if err != nil || cfg.NodeID != "from-env-file" {
		t.Fatalf("CLOVER_CONFIG: node %q, err %v", cfg.NodeID, err)
	}
	empty := writeFile(t, "")
	if _, _, err := nodeconfig.Load(append(base, "--node-id=n", "--config="+empty), env{}.lookup); err != nil {
		t.Fatalf("empty file: %v", err)
	}
}

func TestBootstrapSources(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  env
		file string
		want bool
	}{
		{"default", nil, nil, "", false},
		{"flag", []string{"--bootstrap"}, nil, "", true},
		{"flag false beats env true", []string{"--bootstrap=false"}, env{"CLOVER_BOOTSTRAP": "true"}, "", false},
		{"env", nil, env{"CLOVER_BOOTSTRAP": "1"}, "", true},
		{"env false beats file true", nil, env{"CLOVER_BOOTSTRAP": "false"}, "bootstrap: true\n", false},
		{"file", nil, nil, "bootstrap: true\n", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--node-id=n", "--locality=country=IE", "--data-dir=/d"}, tc.args...)
			if tc.file != "" {
				args = append(args, "--config="+writeFile(t, tc.file))
			}
			cfg, _, err := nodeconfig.Load(args, tc.env.lookup)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Bootstrap != tc.want {
				t.Errorf("bootstrap %v, want %v", cfg.Bootstrap, tc.want)
			}
		})
	}
}

func TestJurisdictions(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  env
		file string
		want map[string][]string
	}{
		{name: "none"},
		{name: "file map of lists and of strings",
			file: "jurisdiction:\n  NORDIC: [SE, dk, FI]\n  ALPS: CH,LI\n",
			want: map[string][]string{"NORDIC": {"SE", "dk", "FI"}, "ALPS": {"CH", "LI"}}},
		{name: "env",
			env:  env{"CLOVER_JURISDICTION": "NORDIC=SE,DK;ALPS=CH, LI;"},
			want: map[string][]string{"NORDIC": {"SE", "DK"}, "ALPS": {"CH", "LI"}}},
		{name: "repeated flags",
			args: []string{"--jurisdiction", "NORDIC=SE,DK", "--jurisdiction=ALPS=CH"},
			want: map[string][]string{"NORDIC": {"SE", "DK"}, "ALPS": {"CH"}}},
		{name: "flags replace env and file",
			args: []string{"--jurisdiction=ALPS=CH"},
			env:  env{"CLOVER_JURISDICTION": "NORDIC=SE"},
			file: "jurisdiction: {BENELUX: [BE, NL, LU]}\n",
			want: map[string][]string{"ALPS": {"CH"}}},
		{name: "env replaces file",
			env:  env{"CLOVER_JURISDICTION": "NORDIC=SE"},
			file: "jurisdiction: {BENELUX: [BE, NL, LU]}\n",
			want: map[string][]string{"NORDIC": {"SE"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--node-id=n", "--locality=country=IE", "--data-dir=/d"}, tc.args...)
			if tc.file != "" {
				args = append(args, "--config="+writeFile(t, tc.file))
			}
			cfg, _, err := nodeconfig.Load(args, tc.env.lookup)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.EqualFunc(cfg.Jurisdictions, tc.want, func(a, b []string) bool { return reflect.DeepEqual(a, b) }) {
				t.Errorf("jurisdictions %v, want %v", cfg.Jurisdictions, tc.want)
			}
		})
	}
}

// The personal-data guardrail names a jurisdiction, operator-defined ones
// included, or countries, in any case, from any source.
func TestPersonalDataJurisdiction(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  env
		file string
		want string // the guardrail's name; "" for none
		n    int    // its countries
	}{
		{name: "none"},
		{name: "flag", args: []string{"--personal-data-jurisdiction=eea"}, want: "EEA", n: 30},
		{name: "countries in the env", env: env{"CLOVER_PERSONAL_DATA_JURISDICTION": "ie, no"}, want: "IE,NO", n: 2},
		{name: "operator-defined in the file", file: "jurisdiction: {NORDICS: [DK, FI, IS, NO, SE]}\npersonal-data-jurisdiction: NORDICS\n",
			want: "NORDICS", n: 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--node-id=n", "--locality=country=IE", "--data-dir=/d"}, tc.args...)
			if tc.file != "" {
				args = append(args, "--config="+writeFile(t, tc.file))
			}
			cfg, _, err := nodeconfig.Load(args, tc.env.lookup)
			if err != nil {
				t.Fatal(err)
			}
			g, err := cfg.PersonalDataGuardrail()
			if err != nil || g.Name != tc.want || len(g.Countries) != tc.n {
				t.Errorf("guardrail %q of %d countries (%v), want %q of %d", g.Name, len(g.Countries), err, tc.want, tc.n)
			}
		})
	}
}

// Every error wraps ErrUsage and names the setting and where its value came
// from; causes from placement and server stay testable with errors.Is.
func TestErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  env
		file string // written to a file passed with --config; $FILE in want is its path
		is   []error
		want []string
	}{
		{name: "unknown file key", file: "node-id: n\nnodeid: typo\n", want: []string{"config file $FILE", `unknown key "nodeid"`}},
		{name: "invalid YAML", file: "node-id: [unclosed\n", want: []string{"config file $FILE", "not valid YAML"}},
		{name: "file not a map", file: "- a\n- b\n", want: []string{"$FILE", "not valid YAML"}},
		{name: "missing file", args: []string{"--config=/nonexistent/cloverd.yaml"}, want: []string{"config file", "/nonexistent/cloverd.yaml"}},
		{name: "file list for a single value", file: "node-id: [a, b]\n", want: []string{"$FILE key node-id", "single value"}},

		{name: "bad duration flag", args: []string{"--raft-heartbeat-timeout=5"},
			want: []string{"flag --raft-heartbeat-timeout", "duration"}},
		{name: "bad duration env", env: env{"CLOVER_RAFT_COMMIT_TIMEOUT": "soon"},
			want: []string{"environment CLOVER_RAFT_COMMIT_TIMEOUT", "duration"}},
		{name: "bad duration file", file: "raft-election-timeout: fast\n",
			want: []string{"file $FILE key raft-election-timeout", "duration"}},
		{name: "bad int env", env: env{"CLOVER_META_VOTERS": "three"}, want: []string{"environment CLOVER_META_VOTERS"}},
		{name: "bad bool env", env: env{"CLOVER_BOOTSTRAP": "maybe"}, want: []string{"environment CLOVER_BOOTSTRAP"}},
		{name: "zero cache", args: []string{"--cache-size-mb=0"}, want: []string{"flag --cache-size-mb", "want 1 to"}},

		{name: "unknown country in locality flag", args: []string{"--locality=country=XX"},
			is: []error{placement.ErrUnknownCountry, placement.ErrInvalidLocality}, want: []string{"flag --locality", `"XX"`}},
		{name: "unknown country in locality env", env: env{"CLOVER_LOCALITY": "country=XX,region=r"},
			is: []error{placement.ErrUnknownCountry}, want: []string{"environment CLOVER_LOCALITY"}},
		{name: "unknown country in locality file", file: "locality: {country: XX, zone: a}\n",
			is: []error{placement.ErrUnknownCountry}, want: []string{"file $FILE key locality"}},
		{name: "unknown country in jurisdiction flag", args: []string{"--jurisdiction=NORDIC=SE", "--jurisdiction=ALPS=CH,XX"},
			is: []error{placement.ErrUnknownCountry, placement.ErrInvalidJurisdiction}, want: []string{"flag --jurisdiction", `"XX"`}},
		{name: "unknown country in jurisdiction env", env: env{"CLOVER_JURISDICTION": "NORDIC=SE;ALPS=XX"},
			is: []error{placement.ErrUnknownCountry}, want: []string{"environment CLOVER_JURISDICTION"}},
		{name: "unknown country in jurisdiction file", file: "jurisdiction:\n  NORDIC: [SE, XX]\n",
			is: []error{placement.ErrUnknownCountry}, want: []string{"file $FILE key jurisdiction"}},
		{name: "jurisdiction without countries", args: []string{"--jurisdiction=NORDIC="},
			is: []error{placement.ErrInvalidJurisdiction}, want: []string{"flag --jurisdiction"}},
		{name: "jurisdiction without name", args: []string{"--jurisdiction=SE,DK"}, want: []string{"flag --jurisdiction", "NAME=CC"}},
		{name: "jurisdiction with a built-in name", env: env{"CLOVER_JURISDICTION": "EU=SE"},
			is: []error{placement.ErrInvalidJurisdiction}, want: []string{"environment CLOVER_JURISDICTION"}},
		{name: "jurisdiction defined twice", args: []string{"--jurisdiction=NORDIC=SE", "--jurisdiction=NORDIC=DK"},
			want: []string{"flag --jurisdiction", `"NORDIC"`, "twice"}},
		{name: "jurisdiction file not a map", file: "jurisdiction: [SE]\n", want: []string{"$FILE key jurisdiction", "map"}},

		{name: "unknown personal-data jurisdiction flag", args: []string{"--personal-data-jurisdiction=EEA,XX"},
			is: []error{placement.ErrUnknownJurisdiction}, want: []string{"flag --personal-data-jurisdiction", `"XX"`}},
		{name: "personal-data jurisdiction ANY", env: env{"CLOVER_PERSONAL_DATA_JURISDICTION": "any"},
			want: []string{"environment CLOVER_PERSONAL_DATA_JURISDICTION", "ANY limits nothing"}},
		{name: "personal-data jurisdiction of another node's catalogue", file: "personal-data-jurisdiction: NORDICS\n",
			is: []error{placement.ErrUnknownJurisdiction}, want: []string{"file $FILE key personal-data-jurisdiction", `"NORDICS"`}},

		{name: "malformed locality flag", args: []string{"--locality=country=IE,region"},
			is: []error{placement.ErrInvalidLocality}, want: []string{"flag --locality"}},
		{name: "locality with an unknown key", env: env{"CLOVER_LOCALITY": "country=IE,planet=earth"},
			is: []error{placement.ErrInvalidLocality}, want: []string{"environment CLOVER_LOCALITY"}},
		{name: "locality without country", args: []string{"--locality=region=ie-dublin"},
			is: []error{placement.ErrInvalidLocality}, want: []string{"flag --locality"}},
		{name: "locality map with an unknown key", file: "locality: {country: IE, planet: earth}\n",
			want: []string{"$FILE key locality", "country, region and zone"}},

		{name: "missing node-id", args: []string{"--locality=country=IE", "--data-dir=/d"},
			want: []string{"node-id is required", "--node-id", "CLOVER_NODE_ID"}},
		{name: "missing data-dir", args: []string{"--node-id=n", "--locality=country=IE"},
			want: []string{"data-dir is required", "--data-dir", "CLOVER_DATA_DIR"}},
		{name: "missing locality", args: []string{"--node-id=n", "--data-dir=/d"},
			want: []string{"locality is required", "CLOVER_LOCALITY"}},
		{name: "group commit window too long", args: []string{"--node-id=n", "--data-dir=/d", "--locality=country=IE", "--raft-group-commit-window=1s"},
			is: []error{server.ErrInvalidConfig}, want: []string{"group commit window"}},
		{name: "keepalive time below gRPC's floor", args: []string{"--node-id=n", "--data-dir=/d", "--locality=country=IE", "--grpc-keepalive-time=2s"},
			is: []error{server.ErrInvalidConfig}, want: []string{"keepalive time 2s"}},
		{name: "keepalive min time above the time", args: []string{"--node-id=n", "--data-dir=/d", "--locality=country=IE", "--grpc-keepalive-min-time=11s"},
			is: []error{server.ErrInvalidConfig}, want: []string{"min time 11s"}},
		{name: "keepalive timeout zero", env: env{"CLOVER_GRPC_KEEPALIVE_TIMEOUT": "0s"}, args: []string{"--node-id=n", "--data-dir=/d", "--locality=country=IE"},
			is: []error{server.ErrInvalidConfig}, want: []string{"timeout 0s"}},
		{name: "no connections", args: []string{"--max-connections=0"}, want: []string{"flag --max-connections", "want 1 to"}},
		{name: "streams beyond 32 bits", env: env{"CLOVER_GRPC_MAX_CONCURRENT_STREAMS": "4294967296"},
			want: []string{"environment CLOVER_GRPC_MAX_CONCURRENT_STREAMS", "want 1 to"}},
		{name: "negative request rate", file: "request-rate: -1\n",
			is: []error{server.ErrInvalidConfig}, want: []string{"request rate -1"}},
		{name: "request rate not a number", args: []string{"--request-rate=fast"}, want: []string{"flag --request-rate", "requests a second"}},
		{name: "handshake timeout zero", args: []string{"--grpc-handshake-timeout=0s"},
			is: []error{server.ErrInvalidConfig}, want: []string{"handshake timeout 0s"}},
		{name: "invalid node-id", args: []string{"--node-id=Node 1"}, is: []error{server.ErrInvalidConfig}, want: []string{"node id"}},

		{name: "bad log level flag", args: []string{"--log-level=verbose"}, want: []string{"flag --log-level", "verbose"}},
		{name: "bad log level env", env: env{"CLOVER_LOG_LEVEL": "INFO"}, want: []string{"environment CLOVER_LOG_LEVEL"}},
		{name: "bad log format file", file: "log-format: xml\n", want: []string{"file $FILE key log-format"}},

		{name: "unknown flag", args: []string{"--nodeid=n"}, want: []string{"nodeid"}},
		{name: "positional argument", args: []string{"serve"}, want: []string{"unexpected arguments"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Required settings the case does not give itself come from flags,
			// except in the cases about a missing one.
			var args []string
			for _, name := range []string{"node-id", "locality", "data-dir"} {
				given := strings.Contains(strings.Join(tc.args, " "), "--"+name+"=") ||
					strings.Contains(tc.file, name+":") || tc.env[envVar(name)] != ""
				if !given && !strings.HasPrefix(tc.name, "missing ") {
					args = append(args, "--"+name+"="+required[name])
				}
			}
			args = append(args, tc.args...)
			path := ""
			if tc.file != "" {
				path = writeFile(t, tc.file)
				args = append(args, "--config="+path)
			}
			_, _, err := nodeconfig.Load(args, tc.env.lookup)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			t.Log(err)
			if !errors.Is(err, nodeconfig.ErrUsage) {
				t.Errorf("error %v does not wrap ErrUsage", err)
			}
			for _, target := range tc.is {
				if !errors.Is(err, target) {
					t.Errorf("error %v does not wrap %v", err, target)
				}
			}
			for _, w := range tc.want {
				w = strings.ReplaceAll(w, "$FILE", path)
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"--node-id=n", "--help"}} {
		// Help needs no other setting, and a broken environment does not stop it.
		_, opts, err := nodeconfig.Load(args, env{"CLOVER_META_VOTERS": "three"}.lookup)
		if err != nil || !opts.Help {
			t.Errorf("Load(%q): help %v, err %v", args, opts.Help, err)
		}
	}
	usage := nodeconfig.FlagSet().FlagUsages()
	for _, name := range []string{"config", "node-id", "locality", "data-dir", "listen-grpc", "join", "bootstrap",
		"jurisdiction", "meta-voters", "raft-heartbeat-timeout", "raft-commit-timeout", "log-level", "log-format", "help"} {
		if !strings.Contains(usage, "--"+name) {
			t.Errorf("usage does not list --%s", name)
		}
	}
}

// TestOperatorGuideExamples loads every YAML block of the operator's guide
// as a config file: an example that names a setting wrongly would stop a
// node that copies it.
func TestOperatorGuideExamples(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "OPERATIONS.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(doc), "```yaml\n")[1:]
	if len(blocks) < 2 {
		t.Fatalf("found %d YAML blocks in OPERATIONS.md, want the example file and the idle-shard settings", len(blocks))
	}
	for i, b := range blocks {
		end := strings.Index(b, "```")
		if end < 0 {
			t.Fatalf("YAML block %d is not closed", i)
		}
		yaml := b[:end]
		path := writeFile(t, yaml)
		// The tuning snippets carry no identity; the command line gives it.
		args := []string{"--config", path}
		for k, v := range required {
			args = append(args, "--"+k+"="+v)
		}
		cfg, _, err := nodeconfig.Load(args, env{}.lookup)
		if err != nil {
			t.Errorf("YAML block %d of OPERATIONS.md:\n%s\nLoad: %v", i, yaml, err)
			continue
		}
		if strings.Contains(yaml, "jurisdiction:") && len(cfg.Jurisdictions) == 0 {
			t.Errorf("YAML block %d defines a jurisdiction, config has none", i)
		}
	}
}

// The three TLS files, from flags, environment or file, run the node in
// secure mode: its ID and locality come from the certificate, one that
// disagrees with the certificate, one of the files alone, a bad file, or
// certificates with --insecure are usage errors that name what is wrong;
// without files or --insecure the node does not start.
func TestTLSFiles(t *testing.T) {
	p := testcerts.NewPKI(t, "nodeconfig-test")
	f := p.Node(t, "ie-1", "country=IE,region=ie-dublin,zone=a")
	cert, key := f.Cert, f.Key
	secure := env{"CLOVER_INSECURE": "false"}
	base := []string{"--data-dir=/var/lib/clover"}

	cfg, opts, err := nodeconfig.Load(append(base, "--tls-cert="+cert, "--tls-key="+key), env{"CLOVER_TLS_CA": f.CA, "CLOVER_INSECURE": "false"}.lookup)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ServerTLS == nil || cfg.ClientTLS == nil || cfg.ServerTLS.ClientAuth != tls.RequireAndVerifyClientCert || opts.TLSCA != f.CA {
		t.Fatalf("TLS not configured: server %+v, client %+v, options %+v", cfg.ServerTLS, cfg.ClientTLS, opts)
	}
	if cfg.NodeID != "ie-1" || cfg.Locality.String() != "country=IE,region=ie-dublin,zone=a" || cfg.TrustDomain != "nodeconfig-test" {
		t.Fatalf("identity from the certificate: node %q at %s in %q", cfg.NodeID, cfg.Locality, cfg.TrustDomain)
	}
	path := writeFile(t, "tls-cert: "+cert+"\ntls-key: "+key+"\ntls-ca: "+f.CA+"\n")
	if cfg, _, err = nodeconfig.Load(append(base, "--config="+path, "--node-id=ie-1"), secure.lookup); err != nil || cfg.ServerTLS == nil {
		t.Fatalf("TLS from the file: %v, server config %v", err, cfg.ServerTLS)
	}
	plain := []string{"--node-id=ie-1", "--locality=country=IE,region=ie-dublin,zone=a", "--data-dir=/var/lib/clover"}
	if cfg, _, err = nodeconfig.Load(plain, env{}.lookup); err != nil || cfg.ServerTLS != nil || cfg.ClientTLS != nil || !cfg.Insecure {
		t.Fatalf("--insecure without TLS files: %v, want plaintext (server %v, client %v)", err, cfg.ServerTLS, cfg.ClientTLS)
	}
	tlsArgs := []string{"--tls-cert=" + cert, "--tls-key=" + key, "--tls-ca=" + f.CA}
	for name, tc := range map[string]struct {
		args []string
		env  env
		want string
	}{
		"certificate alone": {[]string{"--tls-cert=" + cert}, secure, "missing [key CA bundle]"},
		"no such CA file":   {[]string{"--tls-cert=" + cert, "--tls-key=" + key, "--tls-ca=" + cert + ".missing"}, secure, "CA bundle: open"},
		"another node ID":   {append([]string{"--node-id=ie-3"}, tlsArgs...), secure, `node id "ie-3" is configured, but the certificate attests node "ie-1"`},
		"another locality": {append([]string{"--locality=country=US,region=us-east,zone=a"}, tlsArgs...), secure,
			"locality country=US,region=us-east,zone=a is configured, but the certificate attests country=IE,region=ie-dublin,zone=a"},
		"a user certificate": {[]string{"--tls-cert=" + p.User(t, "alice", "reader", "IE").Cert, "--tls-key=" + p.User(t, "alice", "reader", "IE").Key, "--tls-ca=" + f.CA},
			secure, "a node needs a node certificate"},
		"certificates and --insecure": {append([]string{"--insecure"}, tlsArgs...), secure, "--insecure with certificates"},
		"neither":                     {[]string{"--node-id=ie-1", "--locality=country=IE"}, secure, "no certificates"},
	} {
		_, _, err := nodeconfig.Load(append(base, tc.args...), tc.env.lookup)
		if !errors.Is(err, nodeconfig.ErrUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a usage error saying %q", name, err, tc.want)
		}
	}
}
