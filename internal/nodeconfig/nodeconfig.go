// Package nodeconfig turns cloverd's flags, CLOVER_* environment variables
// and YAML config file into a server.Config. Precedence: flag > environment
// > file > default.
//
//	cfg, opts, err := nodeconfig.Load(os.Args[1:], os.LookupEnv)
//
// Every setting has one name used in all three places: the flag --data-dir,
// the variable CLOVER_DATA_DIR and the file key data-dir. Unknown file keys,
// malformed values and unknown country codes are errors that name the
// setting and where it came from.
package nodeconfig

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/clover-kv/clover/internal/tlsfiles"
	"github.com/clover-kv/clover/placement"
	"github.com/clover-kv/clover/server"
)

// Options are process settings that are not part of server.Config.
type Options struct {
	LogLevel  string // debug, info, warn, error
	LogFormat string // text, json
	// PprofAddr, if set, is a loopback host:port serving net/http/pprof.
	PprofAddr string
	// TLSCert, TLSKey and TLSCA are the PEM files of the node's mutual TLS
	// (all three, or none for plaintext).
	TLSCert, TLSKey, TLSCA string
	Help                   bool
}

// ErrUsage wraps every error about the command line, environment or file,
// together with its cause where there is one (for example
// placement.ErrUnknownCountry, placement.ErrInvalidLocality,
// placement.ErrInvalidJurisdiction or server.ErrInvalidConfig).
var ErrUsage = errors.New("configuration")

type setting struct {
	name  string
	usage string
	kind  string // string, bool, list, duration, int, map
	apply func(c *server.Config, o *Options, v string) error
}

func settings() []setting {
	str := func(f func(c *server.Config) *string) func(*server.Config, *Options, string) error {
		return func(c *server.Config, _ *Options, v string) error { *f(c) = v; return nil }
	}
	dur := func(f func(c *server.Config) *time.Duration) func(*server.Config, *Options, string) error {
		return func(c *server.Config, _ *Options, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("want a duration such as 500ms: %w", err)
			}
			*f(c) = d
			return nil
		}
	}
	// mib parses a size in MiB within [lo, hi] into a byte count.
	mib := func(lo, hi int64, f func(c *server.Config) *int64) func(*server.Config, *Options, string) error {
		return func(c *server.Config, _ *Options, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err == nil && (n < lo || n > hi) {
				return fmt.Errorf("want %d to %d, got %d", lo, hi, n)
			}
			*f(c) = n << 20
			return err
		}
	}
	return []setting{
		{"node-id", "node ID, stable across restarts (required)", "string", str(func(c *server.Config) *string { return &c.NodeID })},
		{"locality", "node locality, e.g. country=IE,region=ie-dublin,zone=a (required)", "string", func(c *server.Config, _ *Options, v string) error {
			l, err := placement.ParseLocality(v)
			c.Locality = l
			return err
		}},
		{"data-dir", "directory for the node's data (required)", "string", str(func(c *server.Config) *string { return &c.DataDir })},
		{"listen-grpc", "gRPC listen address", "string", str(func(c *server.Config) *string { return &c.ListenGRPC })},
		{"listen-raft", "Raft listen address", "string", str(func(c *server.Config) *string { return &c.ListenRaft })},
		{"listen-gossip", "gossip listen address", "string", str(func(c *server.Config) *string { return &c.ListenGossip })},
		{"advertise-grpc", "gRPC address others use (default: listen address)", "string", str(func(c *server.Config) *string { return &c.AdvertiseGRPC })},
		{"advertise-raft", "Raft address others use (default: listen address)", "string", str(func(c *server.Config) *string { return &c.AdvertiseRaft })},
		{"advertise-gossip", "gossip address others use (default: listen address)", "string", str(func(c *server.Config) *string { return &c.AdvertiseGossip })},
		{"join", "gossip addresses of existing nodes, comma-separated", "list", func(c *server.Config, _ *Options, v string) error {
			c.Join = splitList(v)
			return nil
		}},
		{"bootstrap", "found a new cluster if this node has no state (give to exactly one node, once)", "bool", func(c *server.Config, _ *Options, v string) error {
			b, err := strconv.ParseBool(v)
			c.Bootstrap = b
			return err
		}},
		{"jurisdiction", "operator-defined jurisdiction NAME=CC,CC,... (repeatable; in the file a map)", "map", func(c *server.Config, _ *Options, v string) error {
			name, list, ok := strings.Cut(v, "=")
			name = strings.TrimSpace(name)
			if !ok || name == "" {
				return fmt.Errorf("want NAME=CC,CC,... got %q", v)
			}
			if _, dup := c.Jurisdictions[name]; dup {
				return fmt.Errorf("jurisdiction %q is defined twice", name)
			}
			countries := splitList(list)
			if _, err := placement.DefaultCatalogue().With(name, countries); err != nil {
				return err
			}
			if c.Jurisdictions == nil {
				c.Jurisdictions = map[string][]string{}
			}
			c.Jurisdictions[name] = countries
			return nil
		}},
		{"meta-voters", "nodes voting in the meta group", "int", func(c *server.Config, _ *Options, v string) error {
			n, err := strconv.Atoi(v)
			c.MetaVoters = n
			return err
		}},
		{"dead-node-grace", "a node unreachable this long has its replicas rebuilt elsewhere", "duration", dur(func(c *server.Config) *time.Duration { return &c.DeadNodeGrace })},
		{"handover-timeout", "on shutdown, how long the node waits for its leaderships to move to other voters before it stops (0 hands nothing over)", "duration", dur(func(c *server.Config) *time.Duration { return &c.HandoverTimeout })},
		{"reconcile-interval", "how often the placement controller runs", "duration", dur(func(c *server.Config) *time.Duration { return &c.ReconcileInterval })},
		{"raft-heartbeat-timeout", "Raft heartbeat timeout", "duration", dur(func(c *server.Config) *time.Duration { return &c.Raft.HeartbeatTimeout })},
		{"raft-election-timeout", "Raft election timeout", "duration", dur(func(c *server.Config) *time.Duration { return &c.Raft.ElectionTimeout })},
		{"raft-leader-lease-timeout", "Raft leader lease timeout", "duration", dur(func(c *server.Config) *time.Duration { return &c.Raft.LeaderLeaseTimeout })},
		{"raft-commit-timeout", "Raft commit timeout: the empty append telling idle followers the commit index", "duration", dur(func(c *server.Config) *time.Duration { return &c.Raft.CommitTimeout })},
		{"raft-group-commit-window", "while a node has writes in flight, how long each Raft log fsync waits for more shards' appends (0 turns it off)", "duration", dur(func(c *server.Config) *time.Duration { return &c.Raft.GroupCommitWindow })},
		{"raft-snapshot-threshold", "log entries between snapshots", "int", func(c *server.Config, _ *Options, v string) error {
			n, err := strconv.ParseUint(v, 10, 64)
			c.Raft.SnapshotThreshold = n
			return err
		}},
		{"min-free-disk-mb", "free space (MiB) to keep on the data directory's file system: below it the node refuses writes, reads go on (0 = no check)", "int", mib(0, 1<<30, func(c *server.Config) *int64 { return &c.MinFreeDisk })},
		{"cache-size-mb", "block cache (MiB) for reads: data, index and filter blocks kept in memory; fills only as blocks are read", "int", mib(1, 1<<20, func(c *server.Config) *int64 { return &c.CacheSize })},
		{"raft-snapshot-interval", "how often each shard checks the snapshot threshold (raft waits a random time up to twice this)", "duration", dur(func(c *server.Config) *time.Duration { return &c.Raft.SnapshotInterval })},
		{"raft-trailing-logs", "log entries kept behind a snapshot for lagging followers; a follower further behind is sent the snapshot", "int", func(c *server.Config, _ *Options, v string) error {
			n, err := strconv.ParseUint(v, 10, 64)
			c.Raft.TrailingLogs = n
			return err
		}},
		{"log-level", "log level: debug, info, warn, error", "string", func(_ *server.Config, o *Options, v string) error {
			switch v {
			case "debug", "info", "warn", "error":
				o.LogLevel = v
				return nil
			}
			return fmt.Errorf("want debug, info, warn or error, got %q", v)
		}},
		{"pprof-addr", "serve Go's net/http/pprof profiles on this host:port (loopback only; empty = off)", "string", func(_ *server.Config, o *Options, v string) error {
			if v == "" {
				o.PprofAddr = ""
				return nil
			}
			host, _, err := net.SplitHostPort(v)
			if err != nil {
				return err
			}
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				return fmt.Errorf("want a loopback address (profiles are not for the network), got %q", v)
			}
			o.PprofAddr = v
			return nil
		}},
		{"tls-cert", "PEM certificate the node presents on every listener and connection (with tls-key and tls-ca; none of the three: plaintext)", "string", func(_ *server.Config, o *Options, v string) error {
			o.TLSCert = v
			return nil
		}},
		{"tls-key", "PEM private key of tls-cert", "string", func(_ *server.Config, o *Options, v string) error {
			o.TLSKey = v
			return nil
		}},
		{"tls-ca", "PEM bundle of the cluster CA: nodes and clients must present a certificate it signed", "string", func(_ *server.Config, o *Options, v string) error {
			o.TLSCA = v
			return nil
		}},
		{"log-format", "log format: text or json", "string", func(_ *server.Config, o *Options, v string) error {
			if v != "text" && v != "json" {
				return fmt.Errorf("want text or json, got %q", v)
			}
			o.LogFormat = v
			return nil
		}},
	}
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func envName(setting string) string {
	return "CLOVER_" + strings.ToUpper(strings.ReplaceAll(setting, "-", "_"))
}

// Load builds the node's config from args (without the program name), the
// environment (lookup, e.g. os.LookupEnv) and the file named by --config or
// CLOVER_CONFIG. It validates the result.
func Load(args []string, lookup func(string) (string, bool)) (server.Config, Options, error) {
	cfg := server.DefaultConfig()
	opts := Options{LogLevel: "info", LogFormat: "text"}
	fs := FlagSet()
	if err := fs.Parse(args); err != nil {
		return cfg, opts, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if h, _ := fs.GetBool("help"); h {
		opts.Help = true
		return cfg, opts, nil
	}
	if fs.NArg() > 0 {
		return cfg, opts, fmt.Errorf("%w: unexpected arguments %q", ErrUsage, fs.Args())
	}
	path, _ := fs.GetString("config")
	if !fs.Changed("config") {
		if v, ok := lookup("CLOVER_CONFIG"); ok {
			path = v
		}
	}
	fileVals := map[string][]string{}
	if path != "" {
		var err error
		if fileVals, err = readFile(path); err != nil {
			return cfg, opts, err
		}
	}
	set := map[string]bool{}
	for _, s := range settings() {
		var vals []string
		var from string
		switch {
		case fs.Changed(s.name):
			from = "flag --" + s.name
			if s.kind == "map" {
				vals, _ = fs.GetStringArray(s.name)
			} else {
				vals = []string{fs.Lookup(s.name).Value.String()}
				if s.kind == "list" {
					l, _ := fs.GetStringSlice(s.name)
					vals = []string{strings.Join(l, ",")}
				}
			}
		case hasEnv(lookup, s.name):
			from = "environment " + envName(s.name)
			v, _ := lookup(envName(s.name))
			vals = []string{v}
			if s.kind == "map" {
				vals = splitMapEnv(v)
			}
		case fileVals[s.name] != nil:
			from = "file " + path + " key " + s.name
			vals = fileVals[s.name]
		default:
			continue
		}
		for _, v := range vals {
			if err := s.apply(&cfg, &opts, strings.TrimSpace(v)); err != nil {
				return cfg, opts, fmt.Errorf("%w: %s: %w", ErrUsage, from, err)
			}
		}
		set[s.name] = true
	}
	for _, name := range []string{"node-id", "locality", "data-dir"} {
		if !set[name] {
			return cfg, opts, fmt.Errorf("%w: %s is required: give flag --%s, environment %s or file key %s",
				ErrUsage, name, name, envName(name), name)
		}
	}
	if opts.TLSCert != "" || opts.TLSKey != "" || opts.TLSCA != "" {
		var err error
		if cfg.ServerTLS, cfg.ClientTLS, err = tlsfiles.Node(opts.TLSCert, opts.TLSKey, opts.TLSCA); err != nil {
			return cfg, opts, fmt.Errorf("%w: tls-cert, tls-key, tls-ca: %w", ErrUsage, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, opts, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	return cfg, opts, nil
}

// splitMapEnv splits a map setting's environment value, NAME=CC,CC;NAME2=CC,
// into its entries; empty entries (a trailing ';') are skipped.
func splitMapEnv(v string) []string {
	var out []string
	for _, e := range strings.Split(v, ";") {
		if strings.TrimSpace(e) != "" {
			out = append(out, e)
		}
	}
	return out
}

func hasEnv(lookup func(string) (string, bool), name string) bool {
	_, ok := lookup(envName(name))
	return ok
}

// FlagSet returns cloverd's flags.
func FlagSet() *pflag.FlagSet {
	fs := pflag.NewFlagSet("cloverd", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.String("config", "", "YAML config file (keys as the flag names)")
	for _, s := range settings() {
		switch s.kind {
		case "bool":
			fs.Bool(s.name, false, s.usage)
		case "list":
			fs.StringSlice(s.name, nil, s.usage)
		case "map":
			fs.StringArray(s.name, nil, s.usage)
		default:
			fs.String(s.name, "", s.usage)
		}
	}
	fs.BoolP("help", "h", false, "show this help")
	return fs
}

// readFile reads a YAML config file into setting name -> values.
func readFile(path string) (map[string][]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: config file: %v", ErrUsage, err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%w: config file %s is not valid YAML: %v", ErrUsage, path, err)
	}
	known := map[string]setting{}
	for _, s := range settings() {
		known[s.name] = s
	}
	out := map[string][]string{}
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		s, ok := known[k]
		if !ok {
			return nil, fmt.Errorf("%w: config file %s: unknown key %q", ErrUsage, path, k)
		}
		vals, err := fileValues(s, raw[k])
		if err != nil {
			return nil, fmt.Errorf("%w: config file %s key %s: %v", ErrUsage, path, k, err)
		}
		out[k] = vals
	}
	return out, nil
}

func fileValues(s setting, v any) ([]string, error) {
	switch s.kind {
	case "map":
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("want a map of NAME: [country codes]")
		}
		var out []string
		for name, list := range m {
			l, err := scalarList(list)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", name, err)
			}
			out = append(out, name+"="+strings.Join(l, ","))
		}
		sort.Strings(out)
		return out, nil
	case "list":
		l, err := scalarList(v)
		if err != nil {
			return nil, err
		}
		return []string{strings.Join(l, ",")}, nil
	default:
		if locality, ok := v.(map[string]any); ok && s.name == "locality" {
			var parts []string
			for _, k := range []string{"country", "region", "zone"} {
				if x, ok := locality[k]; ok {
					parts = append(parts, fmt.Sprintf("%s=%v", k, x))
				}
			}
			if len(parts) != len(locality) {
				return nil, fmt.Errorf("locality keys are country, region and zone")
			}
			return []string{strings.Join(parts, ",")}, nil
		}
		switch x := v.(type) {
		case string, bool, int, float64:
			return []string{fmt.Sprint(x)}, nil
		}
		return nil, fmt.Errorf("want a single value, got %T", v)
	}
}

func scalarList(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return splitList(x), nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("want strings, got %T", e)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("want a list, got %T", v)
}
