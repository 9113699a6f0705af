//go:build !linux

package frontdoor

import (
	"net"
	"time"
)

// setTCPUserTimeout does nothing outside Linux.
func setTCPUserTimeout(*net.TCPConn, time.Duration) error { return nil }
