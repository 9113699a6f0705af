package nodeconfig_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/clover-kv/clover/internal/nodeconfig"
	"github.com/clover-kv/clover/placement"
	"github.com/clover-kv/clover/server"
)

// fuzzConfigFile returns a path, fixed for the fuzz run, that each input
// rewrites with its YAML. Inputs run one at a time in a fuzzing process.
func fuzzConfigFile(f *testing.F) func(t *testing.T, yaml string) string {
	path := filepath.Join(f.TempDir(), "cloverd.yaml")
	return func(t *testing.T, yaml string) string {
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
}

// checkLoaded holds for every Load result: an error wraps ErrUsage; a
// config returned without one (and without --help) passes Validate.
func checkLoaded(t *testing.T, cfg server.Config, opts nodeconfig.Options, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, nodeconfig.ErrUsage) {
			t.Fatalf("error %v does not wrap ErrUsage", err)
		}
		return
	}
	if opts.Help {
		return
	}
	if verr := cfg.Validate(); verr != nil {
		t.Fatalf("Load returned a config that fails Validate: %v", verr)
	}
	if cfg.NodeID == "" || cfg.DataDir == "" || cfg.Locality.Validate() != nil {
		t.Fatalf("Load returned a config without its required settings: %+v", cfg)
	}
	switch opts.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		t.Fatalf("log level %q", opts.LogLevel)
	}
	if opts.LogFormat != "text" && opts.LogFormat != "json" {
		t.Fatalf("log format %q", opts.LogFormat)
	}
}

// FuzzLoad runs Load on fuzzed command lines (one argument per line), fuzzed
// environments (NAME=value per line) and fuzzed YAML files. Whatever the
// input, Load does not panic, every error wraps ErrUsage, and a config it
// returns passes server.Config.Validate.
func FuzzLoad(f *testing.F) {
	req := "--node-id=ie-1\n--locality=country=IE,region=ie-dublin,zone=a\n--data-dir=/var/lib/clover"
	for _, s := range []struct {
		args, env, yaml string
		useFile         bool
	}{
		{args: req},
		{args: req + "\n--bootstrap\n--join=10.0.0.1:7600,10.0.0.2:7600\n--jurisdiction=NORDIC=SE,DK,FI\n--meta-voters=5"},
		{args: req + "\n--raft-heartbeat-timeout=2s\n--raft-leader-lease-timeout=1s\n--raft-group-commit-window=0s\n--log-format=json"},
		{args: req + "\n--pprof-addr=127.0.0.1:6060\n--log-level=debug\n--advertise-grpc=ie-1.internal:7400"},
		{args: "--help"},
		{args: "-h\n--nonsense"},
		{args: "serve"},
		{args: "--node-id"},
		{args: req + "\n--bootstrap=maybe"},
		{args: req + "\n--join=\"10.0.0.1:7600"},
		{env: "CLOVER_NODE_ID=n1\nCLOVER_LOCALITY=country=no,region=no-hamar\nCLOVER_DATA_DIR=/d\nCLOVER_JURISDICTION=NORDIC=SE,DK;ALPS=CH,LI;"},
		{env: "CLOVER_NODE_ID=n1\nCLOVER_LOCALITY=country=XX\nCLOVER_DATA_DIR=/d"},
		{env: "CLOVER_META_VOTERS=three", args: req},
		{useFile: true, yaml: "node-id: n-1\ndata-dir: /data\nlocality: {country: DE, region: de-berlin, zone: b}\n" +
			"bootstrap: true\njoin: ['10.0.0.1:7600']\nmeta-voters: 3\nraft-election-timeout: 750ms\njurisdiction:\n  NORDIC: [SE, dk]\n"},
		{useFile: true, yaml: "locality: country=IE\n", args: "--node-id=n\n--data-dir=/d"},
		{useFile: true, yaml: "nodeid: typo\n", args: req},
		{useFile: true, yaml: "node-id: [unclosed\n", args: req},
		{useFile: true, yaml: "- a\n- b\n", args: req},
		{useFile: true, yaml: "locality: {country: IE, planet: earth}\n", args: "--node-id=n\n--data-dir=/d"},
		{useFile: true, yaml: "jurisdiction: [SE]\n", args: req},
		{useFile: true, yaml: "meta-voters: 1.5\nbootstrap: 1\n", args: req},
		{useFile: true, yaml: "a: &a [x, x]\nb: *a\n", args: req},
		{useFile: true, yaml: "", args: req},
	} {
		f.Add(s.args, s.env, s.yaml, s.useFile)
	}
	file := fuzzConfigFile(f)
	f.Fuzz(func(t *testing.T, argLines, envLines, yamlText string, useFile bool) {
		// The test chooses the config file: a fuzzed one could name a
		// device that never ends.
		var args []string
		if argLines != "" {
			for _, a := range strings.Split(argLines, "\n") {
				if !strings.Contains(a, "config") {
					args = append(args, a)
				}
			}
		}
		e := env{}
		for _, l := range strings.Split(envLines, "\n") {
			if k, v, ok := strings.Cut(l, "="); ok && k != "CLOVER_CONFIG" {
				e[k] = v
			}
		}
		if useFile {
			args = append(args, "--config="+file(t, yamlText))
		}
		cfg, opts, err := nodeconfig.Load(args, e.lookup)
		checkLoaded(t, cfg, opts, err)
	})
}

// fuzzSettings are the settings FuzzLoadSetting gives a fuzzed value, each
// with what the resulting config holds.
var fuzzSettings = []struct {
	name string
	get  func(server.Config, nodeconfig.Options) string
}{
	{"node-id", func(c server.Config, _ nodeconfig.Options) string { return c.NodeID }},
	{"locality", func(c server.Config, _ nodeconfig.Options) string { return c.Locality.String() }},
	{"data-dir", func(c server.Config, _ nodeconfig.Options) string { return c.DataDir }},
	{"listen-grpc", func(c server.Config, _ nodeconfig.Options) string { return c.ListenGRPC }},
	{"advertise-grpc", func(c server.Config, _ nodeconfig.Options) string { return c.AdvertiseGRPC }},
	{"advertise-raft", func(c server.Config, _ nodeconfig.Options) string { return c.AdvertiseRaft }},
	{"join", func(c server.Config, _ nodeconfig.Options) string { return strings.Join(c.Join, ",") }},
	{"bootstrap", nil},
	{"jurisdiction", func(c server.Config, _ nodeconfig.Options) string {
		var out []string
		for name, countries := range c.Jurisdictions {
			out = append(out, name+"="+strings.Join(countries, ","))
		}
		return strings.Join(out, ";")
	}},
	{"meta-voters", nil},
	{"dead-node-grace", func(c server.Config, _ nodeconfig.Options) string { return c.DeadNodeGrace.String() }},
	{"handover-timeout", func(c server.Config, _ nodeconfig.Options) string { return c.HandoverTimeout.String() }},
	{"raft-heartbeat-timeout", func(c server.Config, _ nodeconfig.Options) string { return c.Raft.HeartbeatTimeout.String() }},
	{"raft-group-commit-window", func(c server.Config, _ nodeconfig.Options) string { return c.Raft.GroupCommitWindow.String() }},
	{"raft-snapshot-threshold", nil},
	{"log-level", func(_ server.Config, o nodeconfig.Options) string { return o.LogLevel }},
	{"log-format", func(_ server.Config, o nodeconfig.Options) string { return o.LogFormat }},
	{"pprof-addr", func(_ server.Config, o nodeconfig.Options) string { return o.PprofAddr }},
}

// FuzzLoadSetting gives one setting a fuzzed value from a flag, the
// environment or the config file, the required settings coming from flags.
// Whatever the value, an error wraps ErrUsage and names the setting where
// its value came from; a locality or jurisdiction that placement refuses is
// refused with placement's error (ErrUnknownCountry for an unassigned
// country code, ErrInvalidLocality, ErrInvalidJurisdiction); and a config
// Load returns passes Validate and holds the value as given (trimmed; a
// locality or duration in its canonical form).
func FuzzLoadSetting(f *testing.F) {
	for _, s := range []struct {
		setting uint8
		value   string
		source  uint8
	}{
		{0, "ie-2", 0}, {0, "Node 1", 1}, {0, "  n.1_x-y  ", 2}, {0, "", 1}, {0, strings.Repeat("n", 65), 0},
		{1, "country=NO,region=no-hamar,zone=b", 0}, {1, "country=no", 1}, {1, "country=XX", 0}, {1, "country=XX,region=r", 1},
		{1, "country=IE,region=Dublin", 2}, {1, "region=ie-dublin", 0}, {1, "country=IE,country=NO", 2}, {1, "", 0},
		{1, "country=IRL", 2}, {1, "country=IE;region=x", 0},
		{2, "/srv/clover", 0}, {3, "0.0.0.0:7401", 1}, {3, "7401", 0}, {3, "[::1]:0", 2},
		{4, "ie-1.internal:7400", 0}, {4, "ie-1.internal", 1}, {4, strings.Repeat("a", 400) + ":7400", 2}, {4, "\xff:1", 1},
		{5, "[fe80::1%eth0]:7500", 0}, {5, "[fe80::1%" + strings.Repeat("z", 300) + "]:7500", 1},
		{6, "10.0.0.1:7600, 10.0.0.2:7600", 0}, {6, "10.0.0.1", 1}, {6, "", 2},
		{7, "true", 0}, {7, "1", 1}, {7, "maybe", 2},
		{8, "NORDIC=SE,DK", 0}, {8, "NORDIC=SE,XX", 1}, {8, "NORDIC=SE,xx", 2}, {8, "EU=SE", 0}, {8, "SE,DK", 1},
		{8, "NORDIC=", 2}, {8, "nordic=SE", 0}, {8, "NORDIC=SE;ALPS=CH", 1}, {8, "NORDIC=SE,SE", 0},
		{9, "5", 0}, {9, "0", 1}, {9, "8", 2}, {9, "three", 0},
		{10, "1m", 0}, {10, "0s", 1}, {10, "-1s", 2}, {10, "soon", 0},
		{11, "5ms", 0}, {11, "4ms", 1}, {11, "2562047h47m16.854775807s", 2}, {11, "9223372036854775808ns", 0},
		{12, "100ms", 0}, {12, "101ms", 1}, {12, "0", 2},
		{13, "1", 0}, {13, "0", 1}, {13, "-1", 2},
		{14, "warn", 0}, {14, "INFO", 1}, {15, "json", 2}, {15, "xml", 0},
		{16, "127.0.0.1:6060", 0}, {16, "localhost:6060", 1}, {16, "0.0.0.0:6060", 2}, {16, "", 0},
	} {
		f.Add(s.setting, s.value, s.source)
	}
	file := fuzzConfigFile(f)
	f.Fuzz(func(t *testing.T, which uint8, value string, source uint8) {
		s := fuzzSettings[int(which)%len(fuzzSettings)]
		args := []string{}
		for _, r := range []string{"node-id", "locality", "data-dir"} {
			if r != s.name {
				args = append(args, "--"+r+"="+required[r])
			}
		}
		e := env{}
		var from string
		switch source % 3 {
		case 0:
			args = append(args, "--"+s.name+"="+value)
			from = "flag --" + s.name
		case 1:
			e[envVar(s.name)] = value
			from = "environment " + envVar(s.name)
		case 2:
			var doc any = value
			if s.name == "jurisdiction" {
				name, list, _ := strings.Cut(value, "=")
				doc = map[string]string{name: list}
			}
			b, err := yaml.Marshal(map[string]any{s.name: doc})
			if err != nil {
				return
			}
			var back map[string]any
			if !utf8.ValidString(value) || yaml.Unmarshal(b, &back) != nil || !sameYAML(back[s.name], doc) {
				return // the value does not survive YAML itself
			}
			path := file(t, string(b))
			args = append(args, "--config="+path)
			from = "file " + path + " key " + s.name
		}
		cfg, opts, err := nodeconfig.Load(args, e.lookup)
		checkLoaded(t, cfg, opts, err)

		v := strings.TrimSpace(value)
		// Placement's verdict on a locality or a jurisdiction is Load's.
		var perr error
		switch s.name {
		case "locality":
			_, perr = placement.ParseLocality(v)
		case "jurisdiction":
			if name, list, ok := strings.Cut(v, "="); ok && strings.TrimSpace(name) != "" && !strings.Contains(v, ";") {
				_, perr = placement.DefaultCatalogue().With(strings.TrimSpace(name), splitList(list))
			}
		}
		for _, sentinel := range []error{placement.ErrUnknownCountry, placement.ErrInvalidLocality, placement.ErrInvalidJurisdiction} {
			if errors.Is(perr, sentinel) && !errors.Is(err, sentinel) {
				t.Fatalf("%s %q: placement refuses it with %v, Load returned %v", s.name, value, perr, err)
			}
		}
		// And what placement accepts, with every other setting valid, Load
		// accepts; so does a node ID of the documented form.
		var accept bool
		switch s.name {
		case "locality":
			accept = perr == nil
		case "jurisdiction":
			name, _, ok := strings.Cut(v, "=")
			accept = perr == nil && ok && strings.TrimSpace(name) != "" && !strings.Contains(v, ";")
		case "node-id":
			accept = fuzzNodeID(v)
			if !accept && err == nil {
				t.Fatalf("node id %q taken", value)
			}
		}
		if accept && err != nil {
			t.Fatalf("%s %q is valid, yet Load refused it: %v", s.name, value, err)
		}

		if err != nil {
			// The error names the setting where it came from, unless it
			// comes from Validate, which names the field.
			where := from
			if source%3 == 0 {
				where = "--" + s.name // pflag's own errors say "--name"
			}
			if !errors.Is(err, server.ErrInvalidConfig) && !strings.Contains(err.Error(), where) {
				t.Fatalf("error %q does not name where %s came from (%s)", err, s.name, from)
			}
			return
		}
		if s.get == nil {
			return
		}
		want := v
		switch s.name {
		case "locality":
			l, _ := placement.ParseLocality(v)
			want = l.String()
		case "join":
			want = strings.Join(splitList(v), ",")
			if source%3 == 0 {
				return // a flag's list is CSV, quotes and all
			}
		case "jurisdiction":
			if strings.Contains(v, ";") {
				return // several definitions from the environment
			}
			name, list, _ := strings.Cut(v, "=")
			want = strings.TrimSpace(name) + "=" + strings.Join(splitList(list), ",")
			if v == "" {
				want = "" // an empty environment value defines nothing
			}
		case "dead-node-grace", "handover-timeout", "raft-heartbeat-timeout", "raft-group-commit-window":
			d, _ := time.ParseDuration(v)
			want = d.String()
		}
		if got := s.get(cfg, opts); got != want {
			t.Fatalf("%s %q from %s: config holds %q, want %q", s.name, value, from, got, want)
		}
	})
}

// fuzzNodeID is the documented node ID rule: 1 to 64 characters of a-z,
// 0-9, '.', '_', '-', the first a letter or digit.
func fuzzNodeID(id string) bool {
	if len(id) < 1 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// sameYAML reports whether a value read back from YAML is the one written.
func sameYAML(back, doc any) bool {
	switch d := doc.(type) {
	case string:
		s, ok := back.(string)
		return ok && s == d
	case map[string]string:
		m, ok := back.(map[string]any)
		if !ok || len(m) != len(d) {
			return false
		}
		for k, v := range d {
			if s, ok := m[k].(string); !ok || s != v {
				return false
			}
		}
		return true
	}
	return false
}

// splitList is the documented list syntax: comma-separated, elements
// trimmed, empty ones dropped.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
