package e2e

import "syscall"

// procAttr makes a node die with the test binary, so a test that panics or
// times out leaves no node running.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
