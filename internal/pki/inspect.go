package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/clover-kv/clover/identity"
)

// Entry describes one certificate file.
type Entry struct {
	File string
	// CA: the file is a CA certificate; TrustDomain is the one it names.
	CA bool
	// TrustDomain: of the CA, or of the identity.
	TrustDomain string
	// Identity: a leaf's identity; the zero value when Problem is set or
	// for a CA.
	Identity identity.Identity
	// Problem: why the file holds no valid identity or CA; nil when it does.
	Problem error
	// ChainsToCA: the certificate is signed by the CA of its directory,
	// CAFile (the signature is checked; the validity period is not, see
	// NotAfter). False when the directory has no CA; CAFile is then "".
	ChainsToCA bool
	CAFile     string

	Subject             string
	Serial              string // hex
	NotBefore, NotAfter time.Time
	DNSNames            []string
	IPAddresses         []string
	Usage               []string // extended key usage: "server", "client", ...
}

// List describes every certificate (*.crt) in dir, ca.crt first, then by
// file name. A file that does not parse is listed with its Problem.
func List(dir string) ([]Entry, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.crt"))
	if err != nil {
		return nil, err
	}
	slices.SortFunc(files, func(a, b string) int {
		return strings.Compare(sortKey(a), sortKey(b))
	})
	caCert, caFile := dirCA(dir)
	out := make([]Entry, 0, len(files))
	for _, f := range files {
		out = append(out, inspect(f, caCert, caFile))
	}
	return out, nil
}

func sortKey(path string) string {
	if filepath.Base(path) == CACertFile {
		return ""
	}
	return filepath.Base(path)
}

// Show describes the certificate in file, checking its chain against the
// ca.crt beside it if there is one. A file that is missing or holds no PEM
// certificate is an error (ErrBadFile); a certificate without a valid
// identity is described, with its Problem.
func Show(file string) (Entry, error) {
	if _, err := readCert(file); errors.Is(err, ErrBadFile) {
		return Entry{}, err
	} else if err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrBadFile, err)
	}
	caCert, caFile := dirCA(filepath.Dir(file))
	return inspect(file, caCert, caFile), nil
}

// dirCA is the CA certificate of dir and its file, or nil and "".
func dirCA(dir string) (*x509.Certificate, string) {
	f := filepath.Join(dir, CACertFile)
	c, err := readCert(f)
	if err != nil || !c.IsCA {
		return nil, ""
	}
	return c, f
}

// inspect describes file, whose chain is checked against caCert from
// caFile (nil and "": none).
func inspect(file string, caCert *x509.Certificate, caFile string) Entry {
	e := Entry{File: file, CAFile: caFile}
	c, err := readCert(file)
	if err != nil {
		e.Problem = err
		return e
	}
	e.Subject, e.Serial = c.Subject.String(), fmt.Sprintf("%x", c.SerialNumber)
	e.NotBefore, e.NotAfter = c.NotBefore, c.NotAfter
	e.DNSNames = slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		e.IPAddresses = append(e.IPAddresses, ip.String())
	}
	e.Usage = usage(c)
	if caCert != nil {
		e.ChainsToCA = c.CheckSignatureFrom(caCert) == nil
	}
	if c.IsCA {
		e.CA = true
		e.TrustDomain, e.Problem = identity.TrustDomainOfCA(c)
		return e
	}
	e.Identity, e.Problem = identity.FromCertificate(c)
	e.TrustDomain = e.Identity.TrustDomain
	return e
}

func usage(c *x509.Certificate) []string {
	var out []string
	for _, u := range c.ExtKeyUsage {
		switch u {
		case x509.ExtKeyUsageServerAuth:
			out = append(out, "server")
		case x509.ExtKeyUsageClientAuth:
			out = append(out, "client")
		default:
			out = append(out, fmt.Sprintf("eku(%d)", u))
		}
	}
	return out
}
