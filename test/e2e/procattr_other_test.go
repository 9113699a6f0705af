//go:build !linux

package e2e

import "syscall"

// procAttr: without Pdeathsig, nodes are stopped by the tests' cleanups.
func procAttr() *syscall.SysProcAttr { return nil }
