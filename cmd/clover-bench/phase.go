package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/clover-kv/clover/bench"
	"github.com/clover-kv/clover/bench/cloverdb"
	"github.com/clover-kv/clover/bench/etcddb"
	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/internal/tlsfiles"
	"github.com/clover-kv/clover/placement"
)

// runPhase runs the load or run phase as the flags say and writes its results.
func runPhase(cmd *cobra.Command, phase bench.Phase, f *phaseFlags) error {
	stderr, stdout := cmd.ErrOrStderr(), cmd.OutOrStdout()
	props, workloadName, err := f.properties(cmd)
	if err != nil {
		return err
	}
	cfg, unknown, err := bench.ParseConfig(props)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	for _, k := range unknown {
		fmt.Fprintf(stderr, "warning: unknown property %q ignored\n", k)
	}
	if phase == bench.PhaseRun && cfg.OperationCount == 0 && cfg.MaxExecutionTime == 0 {
		return usageErr("operationcount=0 runs until stopped: give a --duration (maxexecutiontime)")
	}
	if f.conns < 1 || f.statusInterval <= 0 {
		return usageErr("--conns %d, --status-interval %v: both must be positive", f.conns, f.statusInterval)
	}
	labels, err := parseLabels(f.labels)
	if err != nil {
		return err
	}
	if err := f.checkDriver(); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := f.openStore(ctx, stderr)
	if err != nil {
		return err
	}
	defer within(stderr, "stopping the in-process cluster", st.close)
	dbs, err := st.openDBs(ctx, f.conns)
	if err != nil {
		return err
	}
	defer within(stderr, "closing the clients", func() { closeAll(dbs) })

	if phase == bench.PhaseRun && st.local != nil {
		if err := preload(ctx, stderr, cfg, dbs, f); err != nil {
			return err
		}
	}
	w, err := bench.NewWorkload(cfg)
	if err != nil {
		return err
	}
	u := newUI(stderr, phase, w.Config())
	stopProfile, err := startCPUProfile(f.cpuProfile, w.Config().WarmupTime)
	if err != nil {
		return err
	}
	res, err := bench.Run(ctx, bench.RunConfig{
		Phase: phase, Workload: w, DBs: dbs, Driver: f.driver, WorkloadName: workloadName,
		Labels: labels, Settings: st.settings, OpTimeout: f.opTimeout, StatusInterval: f.statusInterval,
		OnStatus: u.status, OnProgress: u.progress,
	})
	u.finish()
	if perr := stopProfile(); perr != nil {
		fmt.Fprintf(stderr, "warning: %v\n", perr)
	}
	if err != nil {
		return err
	}
	if err := bench.WriteTable(stdout, res); err != nil {
		return err
	}
	if err := writeOutputs(res, f); err != nil {
		return err
	}
	if res.Interrupted {
		return errors.New("interrupted; the results cover the operations measured until then")
	}
	if res.StuckWorkers > 0 {
		return fmt.Errorf("%d clients were stuck in operations that ignored their timeout", res.StuckWorkers)
	}
	return nil
}

// properties merges the -P files, the -p settings and the flags that set
// properties, in that order of precedence (lowest first).
func (f *phaseFlags) properties(cmd *cobra.Command) (bench.Properties, string, error) {
	p := bench.Properties{}
	name := "custom"
	for _, file := range f.propFiles {
		if err := bench.LoadPropertiesFile(file, p); err != nil {
			return nil, "", usageErr("%v", err)
		}
		name = filepath.Base(file)
	}
	for _, kv := range f.props {
		if err := p.Set(kv); err != nil {
			return nil, "", usageErr("-p: %v", err)
		}
	}
	fs := cmd.Flags()
	if fs.Changed("clients") {
		p["threadcount"] = strconv.Itoa(f.clients)
	}
	if fs.Changed("target") {
		p["target"] = strconv.FormatFloat(f.target, 'g', -1, 64)
	}
	if fs.Changed("duration") {
		p["maxexecutiontime"] = f.duration.String()
	}
	if fs.Changed("warmup") {
		p["warmuptime"] = f.warmup.String()
	}
	if fs.Changed("seed") {
		p["seed"] = strconv.FormatUint(f.seed, 10)
	}
	return p, name, nil
}

func parseLabels(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageErr("--label %q: want key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

func (f *phaseFlags) checkDriver() error {
	switch f.driver {
	case "clover":
		if f.read != cloverdb.ReadLinearizable && f.read != cloverdb.ReadFollower {
			return usageErr("--read %q: the clover driver reads linearizable or follower", f.read)
		}
	case "etcd":
		if len(f.endpoints) == 0 {
			return usageErr("the etcd driver needs --endpoints")
		}
		if f.read != etcddb.ReadLinearizable && f.read != etcddb.ReadSerializable {
			return usageErr("--read %q: the etcd driver reads linearizable or serializable", f.read)
		}
		if f.tlsCert != "" || f.tlsKey != "" || f.tlsCA != "" {
			return usageErr("--tls-cert, --tls-key and --tls-ca are for the clover driver")
		}
	default:
		return usageErr("--driver %q: want clover or etcd", f.driver)
	}
	return nil
}

// store is the system under test: how to open a DB, what to record about
// it, and an in-process cluster when there is one.
type store struct {
	open     func(ctx context.Context) (bench.DB, error)
	settings map[string]string
	local    *cloverdb.Local
}

func (f *phaseFlags) openStore(ctx context.Context, stderr io.Writer) (*store, error) {
	if f.driver == "etcd" {
		ec := etcddb.Config{Endpoints: f.endpoints, Keyspace: f.keyspace, Read: f.read}
		st := &store{settings: ec.Settings()}
		st.open = func(ctx context.Context) (bench.DB, error) {
			db, version, err := etcddb.Open(ctx, ec)
			if err == nil {
				st.settings["server-version"] = version
			}
			return db, err
		}
		return st, nil
	}
	cc := cloverdb.Config{Endpoints: f.endpoints, Keyspace: f.keyspace, Shards: f.shards, Read: f.read, MaxStale: f.maxStale,
		Policy: client.Policy{Replicas: f.replicas, Audit: f.audit}}
	secure := f.tlsCert != "" || f.tlsKey != "" || f.tlsCA != ""
	switch {
	case secure && f.insecure:
		return nil, fmt.Errorf("%w: --insecure with --tls-cert, --tls-key, --tls-ca: choose one", errUsage)
	case len(f.endpoints) > 0 && !secure && !f.insecure:
		return nil, fmt.Errorf("%w: --endpoints without a certificate: give --tls-cert, --tls-key and --tls-ca, or --insecure for a cluster in insecure mode", errUsage)
	}
	if secure {
		if len(f.endpoints) == 0 {
			return nil, fmt.Errorf("%w: --tls-cert, --tls-key and --tls-ca are for a cluster given with --endpoints", errUsage)
		}
		var err error
		if cc.TLS, err = tlsfiles.Client(f.tlsCert, f.tlsKey, f.tlsCA); err != nil {
			return nil, fmt.Errorf("%w: %w", errUsage, err)
		}
	}
	for _, r := range f.residency {
		switch r = strings.ToUpper(strings.TrimSpace(r)); {
		case r == "", r == "ANY", r == "ANYWHERE":
		case placement.IsCountry(r):
			cc.Policy.AllowCountries = append(cc.Policy.AllowCountries, r)
		default:
			cc.Policy.AllowJurisdictions = append(cc.Policy.AllowJurisdictions, r)
		}
	}
	st := &store{}
	if len(cc.Endpoints) == 0 {
		var err error
		if st.local, err = startLocal(ctx, stderr, f); err != nil {
			return nil, err
		}
		cc.Endpoints = st.local.Endpoints()
	}
	if err := cloverdb.Prepare(ctx, cc); err != nil {
		st.close()
		return nil, err
	}
	st.settings = cc.Settings()
	if st.local != nil {
		st.settings["cluster"] = "in-process"
	}
	st.open = func(ctx context.Context) (bench.DB, error) { return cloverdb.Open(ctx, cc) }
	return st, nil
}

func startLocal(ctx context.Context, stderr io.Writer, f *phaseFlags) (*cloverdb.Local, error) {
	lc := cloverdb.LocalConfig{Dir: f.localDir}
	if f.localLog != "" {
		logf, err := os.Create(f.localLog)
		if err != nil {
			return nil, err
		}
		// The file stays open until the process exits: the nodes log until
		// they are closed.
		lc.Log = logf
	}
	fmt.Fprintln(stderr, "no --endpoints: starting an in-process 3-node cluster (ie-1, ie-2, no-1)")
	l, err := cloverdb.StartLocal(ctx, lc)
	if err != nil {
		return nil, fmt.Errorf("in-process cluster: %w", err)
	}
	return l, nil
}

func (s *store) close() {
	if s.local != nil {
		_ = s.local.Close()
	}
}

func (s *store) openDBs(ctx context.Context, n int) ([]bench.DB, error) {
	dbs := make([]bench.DB, 0, n)
	for range n {
		db, err := s.open(ctx)
		if err != nil {
			closeAll(dbs)
			return nil, err
		}
		dbs = append(dbs, db)
	}
	return dbs, nil
}

// within runs f, giving up after 10s (a client stuck in an operation may
// never close): the process is about to exit anyway.
func within(stderr io.Writer, what string, f func()) {
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		fmt.Fprintf(stderr, "warning: gave up %s after 10s\n", what)
	}
}

func closeAll(dbs []bench.DB) {
	for _, db := range dbs {
		_ = db.Close()
	}
}

// preload runs an unmeasured load phase, for a run against a fresh
// in-process cluster.
func preload(ctx context.Context, stderr io.Writer, cfg bench.Config, dbs []bench.DB, f *phaseFlags) error {
	cfg.WarmupTime, cfg.MaxExecutionTime, cfg.Target = 0, 0, 0
	w, err := bench.NewWorkload(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "loading %d records into the in-process cluster first\n", cfg.InsertCount)
	res, err := bench.Run(ctx, bench.RunConfig{Phase: bench.PhaseLoad, Workload: w, DBs: dbs, OpTimeout: f.opTimeout})
	if err != nil {
		return err
	}
	if res.Interrupted {
		return errors.New("interrupted while loading")
	}
	fmt.Fprintf(stderr, "loaded %d records in %.1fs (%d errors)\n", res.Total.Count, res.DurationSec, res.Total.Errors)
	return nil
}

func writeOutputs(res *bench.Result, f *phaseFlags) error {
	for _, o := range []struct {
		path  string
		write func(io.Writer, *bench.Result) error
	}{{f.jsonOut, bench.WriteJSON}, {f.csvOut, bench.WriteCSV}, {f.htmlOut, bench.WriteHTML}} {
		if o.path == "" {
			continue
		}
		if err := writeFile(o.path, func(w io.Writer) error { return o.write(w, res) }); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(fh); err != nil {
		fh.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return fh.Close()
}

// startCPUProfile writes a CPU profile to path ("" = none) from the end of
// the warm-up until the returned stop is called.
func startCPUProfile(path string, warmup time.Duration) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	out, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	var mu sync.Mutex
	started, stopped := false, false
	startErr := error(nil)
	timer := time.AfterFunc(warmup, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			startErr = pprof.StartCPUProfile(out)
			started = startErr == nil
		}
	})
	return func() error {
		timer.Stop()
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		if started {
			pprof.StopCPUProfile()
		}
		if err := out.Close(); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		if startErr != nil {
			return fmt.Errorf("--cpuprofile: %w", startErr)
		}
		if !started {
			return fmt.Errorf("--cpuprofile: the run ended before its warm-up did; %s is empty", path)
		}
		return nil
	}, nil
}
