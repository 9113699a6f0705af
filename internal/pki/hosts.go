package pki

import (
	"net"
	"slices"
	"strings"
)

// ParseHosts splits a node's hosts into IP addresses and DNS names (lower
// case, once each). A DNS name is dot-separated labels of a-z, 0-9, '-',
// each 1-63 long and beginning and ending with a letter or digit; no
// wildcards. Errors are *InputError of FieldHosts; none is an error too.
func ParseHosts(hosts []string) ([]net.IP, []string, error) {
	var ips []net.IP
	var dns []string
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
			continue
		}
		if !validDNSName(h) {
			return nil, nil, badf(FieldHosts, "%q is neither an IP address nor a DNS name", clip(h))
		}
		if !slices.Contains(dns, h) {
			dns = append(dns, h)
		}
	}
	if len(ips)+len(dns) == 0 {
		return nil, nil, badf(FieldHosts, "none given: a node needs the IP addresses or DNS names it is reached at")
	}
	return ips, dns, nil
}

func validDNSName(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if len(l) == 0 || len(l) > 63 || !alnum(l[0]) || !alnum(l[len(l)-1]) {
			return false
		}
		for i := 0; i < len(l); i++ {
			if !alnum(l[i]) && l[i] != '-' {
				return false
			}
		}
	}
	return true
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// clip shortens input quoted in an error.
func clip(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "..."
}
