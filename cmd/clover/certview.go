package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/clover-kv/clover/identity"
	"github.com/clover-kv/clover/internal/pki"
)

// jsonCert is a certificate of clover cert list and show. It comes from no
// proto message; it follows the same conventions (lowerCamelCase, [] for
// empty lists, times in milliseconds since the Unix epoch). kind is "ca",
// "node", "user" or "" (no valid identity: problem says why); the fields of
// the other kinds are empty. signedByCa: the CA in caFile signed it; caFile
// is "" when there is no ca.crt beside it.
type jsonCert struct {
	File            string       `json:"file"`
	Kind            string       `json:"kind"`
	TrustDomain     string       `json:"trustDomain"`
	Name            string       `json:"name"`
	URI             string       `json:"uri"`
	Locality        jsonLocality `json:"locality"`
	Roles           []string     `json:"roles"`
	Jurisdiction    string       `json:"jurisdiction"`
	Problem         string       `json:"problem"`
	SignedByCA      bool         `json:"signedByCa"`
	CAFile          string       `json:"caFile"`
	Subject         string       `json:"subject"`
	Serial          string       `json:"serial"`
	NotBeforeUnixMs int64        `json:"notBeforeUnixMs"`
	NotAfterUnixMs  int64        `json:"notAfterUnixMs"`
	DNSNames        []string     `json:"dnsNames"`
	IPAddresses     []string     `json:"ipAddresses"`
	Usage           []string     `json:"usage"`
}

// jsonCreated is what a create command wrote.
type jsonCreated struct {
	CertFile    string   `json:"certFile"`
	KeyFile     string   `json:"keyFile"`
	Certificate jsonCert `json:"certificate"`
}

func certJSON(e pki.Entry) jsonCert {
	id := e.Identity
	out := jsonCert{File: e.File, Kind: certKind(e), TrustDomain: e.TrustDomain, SignedByCA: e.ChainsToCA, CAFile: e.CAFile,
		Subject: e.Subject, Serial: e.Serial, Roles: []string{},
		DNSNames: strs(e.DNSNames), IPAddresses: strs(e.IPAddresses), Usage: strs(e.Usage)}
	out.NotBeforeUnixMs, out.NotAfterUnixMs = unixMs(e.NotBefore), unixMs(e.NotAfter)
	if e.Problem != nil {
		out.Problem = e.Problem.Error()
	}
	if e.Problem == nil && !e.CA {
		out.Name, out.URI = id.Name, id.URI()
		out.Locality = jsonLocality{Country: id.Locality.Country, Region: id.Locality.Region, Zone: id.Locality.Zone}
		out.Roles = roleNames(id.Roles)
		out.Jurisdiction = id.Country
	}
	if e.CA && e.Problem == nil {
		out.URI = "spiffe://" + e.TrustDomain
	}
	return out
}

// certKind is "ca", "node", "user", or "" for a certificate without a
// valid identity.
func certKind(e pki.Entry) string {
	switch {
	case e.CA && e.Problem == nil:
		return "ca"
	case e.Problem != nil:
		return ""
	}
	return e.Identity.Kind.String()
}

// certDetail is the identity's fields, or the problem, for a table.
func certDetail(e pki.Entry) string {
	id := e.Identity
	switch {
	case e.Problem != nil:
		return "problem: " + e.Problem.Error()
	case e.CA:
		return "spiffe://" + e.TrustDomain
	case id.Kind == identity.Node:
		return id.Locality.String()
	}
	return "roles=" + strings.Join(roleNames(id.Roles), ",") + " jurisdiction=" + id.Country
}

func roleNames(roles []identity.Role) []string {
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = string(r)
	}
	return out
}

// created shows the certificate a create command wrote, as read back.
func (g *globals) created(is pki.Issued) error {
	e, err := pki.Show(is.CertFile)
	if err != nil {
		return err
	}
	return g.showCreated(is, e)
}

func (g *globals) showCreated(is pki.Issued, e pki.Entry) error {
	if g.output == "json" {
		return g.printJSON(jsonCreated{CertFile: is.CertFile, KeyFile: is.KeyFile, Certificate: certJSON(e)})
	}
	fmt.Fprintf(g.out, "wrote %s and its key %s (mode 0600)\n", is.CertFile, is.KeyFile)
	return g.showCert(e)
}

func (g *globals) showCerts(es []pki.Entry) error {
	if g.output == "json" {
		return g.printJSON(list(es, certJSON))
	}
	rows := list(es, func(e pki.Entry) []string {
		name := e.Identity.Name
		if e.CA {
			name = e.TrustDomain
		}
		return []string{cell([]byte(filepath.Base(e.File))), orDash(certKind(e)), orDash(name), cell([]byte(certDetail(e))),
			orDash(dateOf(e.NotAfter)), yesNo(e.ChainsToCA)}
	})
	return g.table("FILE\tKIND\tNAME\tIDENTITY\tNOT AFTER\tSIGNED BY CA", rows)
}

func (g *globals) showCert(e pki.Entry) error {
	if g.output == "json" {
		return g.printJSON(certJSON(e))
	}
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	line := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	line("file", cell([]byte(e.File)))
	line("kind", orDash(certKind(e)))
	id := e.Identity
	switch {
	case e.Problem != nil:
		line("problem", cell([]byte(e.Problem.Error())))
	case e.CA:
		line("trust domain", e.TrustDomain)
	case id.Kind == identity.Node:
		line("identity", id.URI())
		line("locality", id.Locality.String())
	default:
		line("identity", id.URI())
		line("roles", strings.Join(roleNames(id.Roles), ","))
		line("jurisdiction", id.Country)
	}
	line("subject", cell([]byte(e.Subject)))
	line("serial", e.Serial)
	line("valid", dateOf(e.NotBefore)+" to "+dateOf(e.NotAfter))
	line("dns names", orDash(strings.Join(e.DNSNames, ", ")))
	line("ip addresses", orDash(strings.Join(e.IPAddresses, ", ")))
	line("usage", orDash(strings.Join(e.Usage, ", ")))
	if e.CAFile == "" {
		line("signed by CA", "no (no ca.crt beside it)")
	} else {
		line("signed by CA", yesNo(e.ChainsToCA)+" ("+cell([]byte(e.CAFile))+")")
	}
	return tw.Flush()
}

func dateOf(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
