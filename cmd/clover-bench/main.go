// Command clover-bench runs YCSB-style workloads against Clover or etcd and
// reports throughput and latency percentiles.
//
//	clover-bench run -P bench/workloads/workloada --clients 64 -d 30s --warmup 5s
//	clover-bench load -P bench/workloads/workloadc --driver etcd --endpoints 127.0.0.1:2379 -p recordcount=100000
//	clover-bench compare --goal write-64=ops>=3,p99<=1 out/*.json
//
// Without --endpoints the clover driver starts an in-process three-node
// cluster and runs against it. See bench/README.md.
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "clover-bench: %v\n", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
