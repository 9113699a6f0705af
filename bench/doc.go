// Package bench is clover-bench's harness: YCSB's core workloads (the
// operation mix, key choice and value generation), a runner that drives
// them through a DB with many concurrent clients, and the measurements and
// reports of the result.
//
// A workload comes from YCSB properties (files in workloads/ and -p
// overrides); the runner runs its load or run phase:
//
//	p := bench.Properties{}
//	_ = bench.LoadPropertiesFile("bench/workloads/workloada", p)
//	cfg, _, err := bench.ParseConfig(p)
//	w, err := bench.NewWorkload(cfg)
//	res, err := bench.Run(ctx, bench.RunConfig{Phase: bench.PhaseRun, Workload: w, DBs: dbs})
//	bench.WriteTable(os.Stdout, res)
//
// Measurement: latencies go into HdrHistograms per operation type; the
// warm-up's operations run but are not counted; with a target rate every
// operation has an intended start time and its latency counts from then, so
// a stall is charged to every operation queued behind it (no coordinated
// omission). A Result carries the summaries, a one-second timeline and the
// settings; WriteJSON, WriteCSV, WriteHTML and WriteTable render it, and
// Compare sets two drivers' results side by side.
//
// Drivers live in subpackages: cloverdb (Clover, and an in-process cluster)
// and etcddb (etcd).
package bench
