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
	"math"
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
	// Help and Version: print the flags, or the version, and exit; Load
	// then reads nothing else.
	Help, Version bool
}

// ErrUsage wraps every error about the command line, environment or file,
// together with its cause where there is one (for example
// placement.ErrUnknownCountry, placement.ErrInvalidLocality,
// placement.ErrInvalidJurisdiction or server.ErrInvalidConfig).
var ErrUsage = errors.New("configuration")

type setting struct {
	name  string
	usage string
	kind  string // string, bool, list, duration, int, float, map
	// unit names the value in --help, e.g. duration, MiB, host:port.
	unit string
	// def returns the default as --help shows it; nil when there is none to
	// show (required settings, settings that default to off or to another).
	def   func(c server.Config, o Options) string
	apply func(c *server.Config, o *Options, v string) error
}

// DefaultOptions returns the Options a node runs with unless told otherwise.
func DefaultOptions() Options { return Options{LogLevel: "info", LogFormat: "text"} }

func settings() []setting {
	str := func(name, unit, usage string, f func(c *server.Config) *string, def bool) setting {
		s := setting{name: name, usage: usage, kind: "string", unit: unit,
			apply: func(c *server.Config, _ *Options, v string) error { *f(c) = v; return nil }}
		if def {
			s.def = func(c server.Config, _ Options) string { return *f(&c) }
		}
		return s
	}
	opt := func(name, unit, usage string, f func(o *Options) *string) setting {
		return setting{name: name, usage: usage, kind: "string", unit: unit,
			apply: func(_ *server.Config, o *Options, v string) error { *f(o) = v; return nil }}
	}
	dur := func(name, usage string, f func(c *server.Config) *time.Duration) setting {
		return setting{name: name, usage: usage, kind: "duration", unit: "duration",
			def: func(c server.Config, _ Options) string { return f(&c).String() },
			apply: func(c *server.Config, _ *Options, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil {
					return fmt.Errorf("want a duration such as 500ms: %w", err)
				}
				*f(c) = d
				return nil
			}}
	}
	// mib is a size in MiB within [lo, hi], kept as a byte count.
	mib := func(name, usage string, lo, hi int64, f func(c *server.Config) *int64) setting {
		return setting{name: name, usage: usage, kind: "int", unit: "MiB",
			def: func(c server.Config, _ Options) string { return strconv.FormatInt(*f(&c)>>20, 10) },
			apply: func(c *server.Config, _ *Options, v string) error {
				n, err := strconv.ParseInt(v, 10, 64)
				if err == nil && (n < lo || n > hi) {
					return fmt.Errorf("want %d to %d, got %d", lo, hi, n)
				}
				*f(c) = n << 20
				return err
			}}
	}
	entries := func(name, usage string, f func(c *server.Config) *uint64) setting {
		return setting{name: name, usage: usage, kind: "int", unit: "entries",
			def: func(c server.Config, _ Options) string { return strconv.FormatUint(*f(&c), 10) },
			apply: func(c *server.Config, _ *Options, v string) error {
				n, err := strconv.ParseUint(v, 10, 64)
				*f(c) = n
				return err
			}}
	}
	// count is a whole number of unit within [lo, hi].
	count := func(name, unit, usage string, lo, hi int64, get func(c server.Config) int64, set func(c *server.Config, n int64)) setting {
		return setting{name: name, usage: usage, kind: "int", unit: unit,
			def: func(c server.Config, _ Options) string { return strconv.FormatInt(get(c), 10) },
			apply: func(c *server.Config, _ *Options, v string) error {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return fmt.Errorf("want a whole number: %w", err)
				}
				if n < lo || n > hi {
					return fmt.Errorf("want %d to %d, got %d", lo, hi, n)
				}
				set(c, n)
				return nil
			}}
	}
	return []setting{
		str("node-id", "id", "node ID, stable across restarts (required with --insecure; in secure mode the certificate attests it)", func(c *server.Config) *string { return &c.NodeID }, false),
		{name: "locality", unit: "locality", usage: "node locality, e.g. country=IE,region=ie-dublin,zone=a (required with --insecure; in secure mode the certificate attests it)", kind: "string",
			apply: func(c *server.Config, _ *Options, v string) error {
				l, err := placement.ParseLocality(v)
				c.Locality = l
				return err
			}},
		str("data-dir", "path", "directory for the node's data (required)", func(c *server.Config) *string { return &c.DataDir }, false),
		str("listen-grpc", "host:port", "gRPC listen address", func(c *server.Config) *string { return &c.ListenGRPC }, true),
		str("listen-raft", "host:port", "Raft listen address", func(c *server.Config) *string { return &c.ListenRaft }, true),
		str("listen-gossip", "host:port", "gossip listen address", func(c *server.Config) *string { return &c.ListenGossip }, true),
		str("advertise-grpc", "host:port", "gRPC address others use (default: listen address)", func(c *server.Config) *string { return &c.AdvertiseGRPC }, false),
		str("advertise-raft", "host:port", "Raft address others use (default: listen address)", func(c *server.Config) *string { return &c.AdvertiseRaft }, false),
		str("advertise-gossip", "host:port", "gossip address others use (default: listen address)", func(c *server.Config) *string { return &c.AdvertiseGossip }, false),
		{name: "join", unit: "host:port,...", usage: "gossip addresses of existing nodes, comma-separated", kind: "list",
			apply: func(c *server.Config, _ *Options, v string) error {
				c.Join = splitList(v)
				return nil
			}},
		{name: "bootstrap", usage: "found a new cluster if this node has no state (give to exactly one node, once)", kind: "bool",
			apply: func(c *server.Config, _ *Options, v string) error {
				b, err := strconv.ParseBool(v)
				c.Bootstrap = b
				return err
			}},
		{name: "jurisdiction", unit: "NAME=CC,...", usage: "operator-defined jurisdiction: a name and ISO country codes (repeatable; in the file a map)", kind: "map",
			apply: applyJurisdiction},
		{name: "personal-data-jurisdiction", unit: "jurisdiction", kind: "string",
			usage: "personal-data guardrail, recorded when the cluster is founded (--bootstrap) and never changed: a jurisdiction " +
				"or comma-separated ISO country codes that every personal keyspace's residency and callers stay inside (empty = none)",
			apply: func(c *server.Config, _ *Options, v string) error {
				c.PersonalDataJurisdiction = v
				_, err := c.PersonalDataGuardrail() // after jurisdiction, so operator-defined names are known
				return err
			}},
		{name: "meta-voters", unit: "nodes", usage: "nodes voting in the meta group", kind: "int",
			def: func(c server.Config, _ Options) string { return strconv.Itoa(c.MetaVoters) },
			apply: func(c *server.Config, _ *Options, v string) error {
				n, err := strconv.Atoi(v)
				c.MetaVoters = n
				return err
			}},
		dur("dead-node-grace", "a node unreachable this long has its replicas rebuilt elsewhere", func(c *server.Config) *time.Duration { return &c.DeadNodeGrace }),
		dur("handover-timeout", "on shutdown, how long the node waits for its leaderships to move to other voters before it stops (0 hands nothing over)", func(c *server.Config) *time.Duration { return &c.HandoverTimeout }),
		dur("audit-timeout", "how long a request of an audited keyspace waits for its audit entry to commit before it fails with Unavailable (rule audit)", func(c *server.Config) *time.Duration { return &c.AuditTimeout }),
		dur("reconcile-interval", "how often the placement controller runs", func(c *server.Config) *time.Duration { return &c.ReconcileInterval }),
		dur("leader-balance-interval", "least time between two balance moves of one shard's leadership", func(c *server.Config) *time.Duration { return &c.LeaderBalanceInterval }),
		dur("raft-heartbeat-timeout", "Raft heartbeat timeout", func(c *server.Config) *time.Duration { return &c.Raft.HeartbeatTimeout }),
		dur("raft-election-timeout", "Raft election timeout", func(c *server.Config) *time.Duration { return &c.Raft.ElectionTimeout }),
		dur("raft-leader-lease-timeout", "Raft leader lease timeout", func(c *server.Config) *time.Duration { return &c.Raft.LeaderLeaseTimeout }),
		dur("raft-commit-timeout", "Raft commit timeout: the empty append telling idle followers the commit index", func(c *server.Config) *time.Duration { return &c.Raft.CommitTimeout }),
		dur("raft-group-commit-window", "while a node has writes in flight, how long each Raft log fsync waits for more shards' appends (0 turns it off)", func(c *server.Config) *time.Duration { return &c.Raft.GroupCommitWindow }),
		dur("grpc-keepalive-time", "ping a gRPC connection (client or node) on which nothing arrived this long; at least 10s", func(c *server.Config) *time.Duration { return &c.KeepaliveTime }),
		dur("grpc-keepalive-timeout", "close a gRPC connection whose ping went unanswered this long", func(c *server.Config) *time.Duration { return &c.KeepaliveTimeout }),
		dur("grpc-keepalive-min-time", "shortest interval between a client's pings the node accepts (more often: disconnected); at most grpc-keepalive-time", func(c *server.Config) *time.Duration { return &c.KeepaliveMinTime }),
		count("max-connections", "connections", "connections open at once on each of the gRPC, Raft and gossip listeners; one that has sent nothing gives its place to a newer one",
			1, 1<<24, func(c server.Config) int64 { return int64(c.MaxConnections) }, func(c *server.Config, n int64) { c.MaxConnections = int(n) }),
		dur("grpc-handshake-timeout", "a gRPC connection must send its first bytes and finish its TLS and HTTP/2 handshakes within this", func(c *server.Config) *time.Duration { return &c.HandshakeTimeout }),
		count("grpc-max-concurrent-streams", "streams", "gRPC calls in progress on one connection; more wait",
			1, math.MaxUint32, func(c server.Config) int64 { return int64(c.MaxConcurrentStreams) }, func(c *server.Config, n int64) { c.MaxConcurrentStreams = uint32(n) }),
		{name: "request-rate", unit: "requests/s", usage: "requests a second one caller (certificate identity, or IP address in plaintext) may send this node, sustained; more are refused as resource exhausted (0 = no limit)", kind: "float",
			def: func(c server.Config, _ Options) string { return strconv.FormatFloat(c.RequestRate, 'f', -1, 64) },
			apply: func(c *server.Config, _ *Options, v string) error {
				r, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return fmt.Errorf("want a number of requests a second: %w", err)
				}
				c.RequestRate = r
				return nil
			}},
		count("request-burst", "requests", "requests one caller may send at once after a pause, over request-rate",
			1, 1<<30, func(c server.Config) int64 { return int64(c.RequestBurst) }, func(c *server.Config, n int64) { c.RequestBurst = int(n) }),
		entries("raft-snapshot-threshold", "log entries between snapshots", func(c *server.Config) *uint64 { return &c.Raft.SnapshotThreshold }),
		mib("min-free-disk-mb", "free space to keep on the data directory's file system: below it the node refuses writes, reads go on (0 = no check)", 0, 1<<30, func(c *server.Config) *int64 { return &c.MinFreeDisk }),
		mib("cache-size-mb", "block cache for reads: data, index and filter blocks kept in memory; fills only as blocks are read", 1, 1<<20, func(c *server.Config) *int64 { return &c.CacheSize }),
		dur("raft-snapshot-interval", "how often each shard checks the snapshot threshold (raft waits a random time up to twice this)", func(c *server.Config) *time.Duration { return &c.Raft.SnapshotInterval }),
		entries("raft-trailing-logs", "log entries kept behind a snapshot for lagging followers; a follower further behind is sent the snapshot", func(c *server.Config) *uint64 { return &c.Raft.TrailingLogs }),
		{name: "log-level", unit: "level", usage: "log level: debug, info, warn, error", kind: "string",
			def: func(_ server.Config, o Options) string { return o.LogLevel },
			apply: func(_ *server.Config, o *Options, v string) error {
				switch v {
				case "debug", "info", "warn", "error":
					o.LogLevel = v
					return nil
				}
				return fmt.Errorf("want debug, info, warn or error, got %q", v)
			}},
		{name: "pprof-addr", unit: "host:port", usage: "serve Go's net/http/pprof profiles on this address (loopback only; empty = off)", kind: "string",
			apply: applyPprofAddr},
		{name: "insecure", usage: "run without certificates (development only): node localities and callers are unattested; without it a node with no certificates refuses to start", kind: "bool",
			apply: func(c *server.Config, _ *Options, v string) error {
				b, err := strconv.ParseBool(v)
				c.Insecure = b
				return err
			}},
		opt("tls-cert", "path", "PEM certificate the node presents on every listener and connection (with tls-key and tls-ca; none of the three: plaintext)", func(o *Options) *string { return &o.TLSCert }),
		opt("tls-key", "path", "PEM private key of tls-cert", func(o *Options) *string { return &o.TLSKey }),
		opt("tls-ca", "path", "PEM bundle of the cluster CA: nodes and clients must present a certificate it signed", func(o *Options) *string { return &o.TLSCA }),
		{name: "log-format", unit: "format", usage: "log format: text or json", kind: "string",
			def: func(_ server.Config, o Options) string { return o.LogFormat },
			apply: func(_ *server.Config, o *Options, v string) error {
				if v != "text" && v != "json" {
					return fmt.Errorf("want text or json, got %q", v)
				}
				o.LogFormat = v
				return nil
			}},
	}
}

func applyJurisdiction(c *server.Config, _ *Options, v string) error {
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
}

func applyPprofAddr(_ *server.Config, o *Options, v string) error {
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
	opts := DefaultOptions()
	fs := FlagSet()
	if err := fs.Parse(args); err != nil {
		return cfg, opts, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if h, _ := fs.GetBool("help"); h {
		opts.Help = true
		return cfg, opts, nil
	}
	if v, _ := fs.GetBool("version"); v {
		opts.Version = true
		return cfg, opts, nil
	}
	if fs.NArg() > 0 {
		return cfg, opts, fmt.Errorf("%w: unexpected arguments %q", ErrUsage, fs.Args())
	}
	path := fs.Lookup("config").Value.String()
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
			if m, ok := fs.Lookup(s.name).Value.(*mapValue); ok {
				vals = m.entries
			} else {
				vals = []string{fs.Lookup(s.name).Value.String()}
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
	secure := opts.TLSCert != "" || opts.TLSKey != "" || opts.TLSCA != ""
	for _, name := range []string{"node-id", "locality", "data-dir"} {
		if name != "data-dir" && secure {
			continue // the certificate attests them
		}
		if !set[name] {
			return cfg, opts, fmt.Errorf("%w: %s is required: give flag --%s, environment %s or file key %s",
				ErrUsage, name, name, envName(name), name)
		}
	}
	if secure {
		sec, err := tlsfiles.NodeSecure(opts.TLSCert, opts.TLSKey, opts.TLSCA)
		if err != nil {
			return cfg, opts, fmt.Errorf("%w: tls-cert, tls-key, tls-ca: %w", ErrUsage, err)
		}
		cfg.ServerTLS, cfg.ClientTLS, cfg.TrustDomain = sec.Server, sec.Client, sec.TrustDomain
	}
	cfg, err := cfg.WithAttestedIdentity()
	if err != nil {
		return cfg, opts, fmt.Errorf("%w: %w", ErrUsage, err)
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

// FlagSet returns cloverd's flags. Each shows its unit and, where there
// is one, its default: --help prints them with FlagUsages.
func FlagSet() *pflag.FlagSet {
	fs := pflag.NewFlagSet("cloverd", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.Var(&textValue{unit: "path"}, "config", "YAML config file (keys as the flag names)")
	defCfg, defOpts := server.DefaultConfig(), DefaultOptions()
	for _, s := range settings() {
		switch s.kind {
		case "bool":
			fs.Bool(s.name, false, s.usage)
		case "list":
			fs.Var(&listValue{textValue: textValue{unit: s.unit}}, s.name, s.usage)
		case "map":
			fs.Var(&mapValue{unit: s.unit}, s.name, s.usage)
		default:
			v := &textValue{unit: s.unit}
			if s.def != nil {
				v.s = s.def(defCfg, defOpts)
			}
			fs.Var(v, s.name, s.usage)
		}
	}
	fs.BoolP("help", "h", false, "show this help")
	fs.Bool("version", false, "print the version and commit, and exit")
	return fs
}

// textValue is a flag's text, kept as given for the setting to parse (so
// that a flag, a variable and a file key are checked alike); unit is the
// type name --help shows.
type textValue struct{ s, unit string }

func (v *textValue) String() string     { return v.s }
func (v *textValue) Set(s string) error { v.s = s; return nil }
func (v *textValue) Type() string       { return v.unit }

// listValue is a comma-separated list flag; given twice, the lists join.
type listValue struct {
	textValue
	set bool
}

func (v *listValue) Set(s string) error {
	if v.set && v.s != "" {
		s = v.s + "," + s
	}
	v.s, v.set = s, true
	return nil
}

// mapValue is a repeatable flag of map entries, NAME=value each.
type mapValue struct {
	entries []string
	unit    string
}

func (v *mapValue) String() string     { return strings.Join(v.entries, ";") }
func (v *mapValue) Set(s string) error { v.entries = append(v.entries, s); return nil }
func (v *mapValue) Type() string       { return v.unit }

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
