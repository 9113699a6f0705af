package testcerts

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/clover-kv/clover/identity"
	"github.com/clover-kv/clover/internal/pki"
	"github.com/clover-kv/clover/placement"
)

// PKI is a cluster's PKI made with internal/pki (the code behind `clover
// cert`) in a temporary directory: identity certificates for secure mode.
type PKI struct {
	Dir         string
	TrustDomain string
	CAFile      string
}

// Files are a certificate, its key and the CA bundle, as PEM files.
type Files struct{ Cert, Key, CA string }

// NewPKI makes the CA of cluster trustDomain.
func NewPKI(t testing.TB, trustDomain string) *PKI {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.CreateCA(dir, trustDomain, 0)
	if err != nil {
		t.Fatal(err)
	}
	return &PKI{Dir: dir, TrustDomain: trustDomain, CAFile: ca.CertFile}
}

// Node issues node id's certificate for locality loc
// ("country=IE,region=ie-dublin,zone=a"), for 127.0.0.1 and localhost.
// Issuing a node twice replaces its files.
func (p *PKI) Node(t testing.TB, id, loc string) Files {
	t.Helper()
	l, err := placement.ParseLocality(loc)
	if err != nil {
		t.Fatal(err)
	}
	is, err := pki.CreateNode(p.Dir, id, l, []string{"127.0.0.1", "localhost"}, pki.Options{Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	return Files{Cert: is.CertFile, Key: is.KeyFile, CA: p.CAFile}
}

// User issues user name's certificate with roles ("reader,writer") working
// from country.
func (p *PKI) User(t testing.TB, name, roles, country string) Files {
	t.Helper()
	rs, err := identity.ParseRoles(roles)
	if err != nil {
		t.Fatal(err)
	}
	is, err := pki.CreateUser(p.Dir, name, rs, strings.ToUpper(country), pki.Options{Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	return Files{Cert: is.CertFile, Key: is.KeyFile, CA: p.CAFile}
}

// NodeFiles returns the files of a node issued before.
func (p *PKI) NodeFiles(id string) Files {
	c, k := pki.NodeFiles(id)
	return Files{Cert: filepath.Join(p.Dir, c), Key: filepath.Join(p.Dir, k), CA: p.CAFile}
}
