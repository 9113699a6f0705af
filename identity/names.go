package identity

import (
	"fmt"
	"strings"
)

// Limits of the names in an identity.
const (
	// MaxNameLen is the longest node ID or user name.
	MaxNameLen = 64
	// MaxTrustDomainLen is the longest trust domain (cluster name).
	MaxTrustDomainLen = 128
)

// ValidName reports whether s is a valid node ID or user name: 1 to 64
// characters of a-z, 0-9, '.', '_', '-', the first a letter or digit (the
// node-ID rule of cloverd's --node-id).
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen || !alnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// ValidTrustDomain reports whether s is a valid trust domain, the cluster's
// name: 1 to 128 characters of a-z, 0-9, '.', '-', made of dot-separated
// labels that each begin and end with a letter or digit (a DNS name in
// lower case, which Go's certificate parser accepts as a URI host).
func ValidTrustDomain(s string) bool {
	if len(s) == 0 || len(s) > MaxTrustDomainLen {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || !alnum(label[0]) || !alnum(label[len(label)-1]) {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !alnum(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// checkName returns an ErrInvalidName error naming what when s is not a
// valid node ID or user name.
func checkName(what, s string) error {
	if ValidName(s) {
		return nil
	}
	return fmt.Errorf("%w: %s %q: want 1-%d characters of a-z, 0-9, '.', '_', '-' starting with a letter or digit",
		ErrInvalidName, what, clip(s), MaxNameLen)
}

// checkTrustDomain returns an ErrInvalidName error when s is not a valid
// trust domain.
func checkTrustDomain(s string) error {
	if ValidTrustDomain(s) {
		return nil
	}
	return fmt.Errorf("%w: trust domain %q: want 1-%d characters of a-z, 0-9, '-' in dot-separated labels, each beginning and ending with a letter or digit",
		ErrInvalidName, clip(s), MaxTrustDomainLen)
}
