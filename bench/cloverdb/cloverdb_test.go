package cloverdb

import (
	"context"
	"testing"
	"time"

	"github.com/clover-kv/clover/bench"
)

func workload(t *testing.T, p bench.Properties) *bench.Workload {
	t.Helper()
	base := bench.Properties{"recordcount": "200", "operationcount": "200", "threadcount": "4", "seed": "11"}
	for k, v := range p {
		base[k] = v
	}
	c, _, err := bench.ParseConfig(base)
	if err != nil {
		t.Fatal(err)
	}
	w, err := bench.NewWorkload(c)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func runPhase(t *testing.T, ctx context.Context, phase bench.Phase, w *bench.Workload, dbs ...bench.DB) *bench.Result {
	t.Helper()
	res, err := bench.Run(ctx, bench.RunConfig{Phase: phase, Workload: w, DBs: dbs, OpTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestWorkloadsAgainstLocalCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lc, err := StartLocal(ctx, LocalConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	cfg := Config{Endpoints: lc.Endpoints(), Shards: 4}
	if err := Prepare(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := Prepare(ctx, cfg); err != nil { // the keyspace exists now
		t.Fatalf("second Prepare: %v", err)
	}
	var dbs []bench.DB
	for range 2 {
		db, err := Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dbs = append(dbs, db)
	}

	// Load 200 records, then workload A's reads and updates over them.
	a := workload(t, bench.Properties{"readproportion": "0.5", "updateproportion": "0.5", "requestdistribution": "zipfian"})
	if res := runPhase(t, ctx, bench.PhaseLoad, a, dbs...); res.Total.Count != 200 || res.Total.Errors != 0 {
		t.Fatalf("load: %d inserted, %d errors; want 200 and none", res.Total.Count, res.Total.Errors)
	}
	res := runPhase(t, ctx, bench.PhaseRun, a, dbs...)
	if res.Total.Count != 200 || res.Total.Errors != 0 || res.Total.NotFound != 0 {
		t.Fatalf("run: %+v; want 200 operations, all found, no errors", res.Total)
	}

	// Scans and inserts (workload E) over the same records.
	e := workload(t, bench.Properties{"readproportion": "0", "scanproportion": "0.95", "insertproportion": "0.05",
		"maxscanlength": "20", "operationcount": "50"})
	if res := runPhase(t, ctx, bench.PhaseRun, e, dbs...); res.Total.Count != 50 || res.Total.Errors != 0 {
		t.Fatalf("scans: %+v", res.Total)
	}

	// Follower reads through a client of their own.
	fcfg := cfg
	fcfg.Read, fcfg.MaxStale = ReadFollower, 100*time.Millisecond
	fdb, err := Open(ctx, fcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer fdb.Close()
	c := workload(t, bench.Properties{"readproportion": "1", "updateproportion": "0", "operationcount": "100"})
	if res := runPhase(t, ctx, bench.PhaseRun, c, fdb); res.Total.Count != 100 || res.Total.Errors != 0 {
		t.Fatalf("follower reads: %+v", res.Total)
	}
}

func TestConfigChecks(t *testing.T) {
	ctx := context.Background()
	if err := Prepare(ctx, Config{}); err == nil {
		t.Error("Prepare without endpoints succeeded")
	}
	if _, err := Open(ctx, Config{Endpoints: []string{"127.0.0.1:1"}, Read: "serializable"}); err == nil {
		t.Error("Open accepted read mode serializable")
	}
	s := Config{Endpoints: []string{"x:1"}, Read: ReadFollower}.Settings()
	if s["residency"] != "EEA" || s["replicas"] != "3" || s["shards"] != "8" || s["max-stale"] != "100ms" {
		t.Errorf("default settings %v", s)
	}
}
