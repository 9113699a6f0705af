// Package e2e tests Clover the way operators run it: real cloverd processes
// on loopback, each with its own data directory and fixed ports, crashed
// with SIGKILL, stopped with SIGTERM and restarted on the same data, and
// driven through the Go client and the clover CLI.
//
//	CGO_ENABLED=0 go test ./test/e2e/ -count=1 -v
//
// TestMain builds cloverd and clover once into a temporary directory; with
// -short every test is skipped. Each node's stderr goes to a log file in the
// test's temporary directory, and the tail of every log is printed when a
// test fails; set CLOVER_E2E_LOGS to a directory to keep the whole logs of
// a failed test there.
//
// A test starts a cluster with startCluster, reaches it with cluster.client
// and changes it with node.crash, node.stop and node.start:
//
//	c := startCluster(t, demoNodes())
//	cl := c.client(t)
//	c.node("ie-2").crash()
//	c.node("ie-2").start()
//	c.waitLive(t, "ie-1", "ie-2", "no-1", "us-1")
package e2e
