// Command clover is Clover's command-line tool: key-value operations,
// keyspaces and cluster status, and the cluster's certificates.
//
//	clover --endpoints 127.0.0.1:7401 keyspace create users --residency EEA --replicas 3 --shards 8 --class personal
//	clover kv put users user/42 '{"name":"Aoife"}'
//	clover cluster status -w json
//	clover cert create-node --node-id ie-1 --country IE --region ie-dublin --zone a --host 10.0.0.1
//
// Each class of error has its own exit code (exitcode.go, clover --help).
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "clover: %s\n", message(err))
		os.Exit(exitCode(err))
	}
}
