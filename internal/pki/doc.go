// Package pki makes and reads a Clover cluster's certificates as files in
// one directory: the cluster CA and one certificate per node and per user,
// each carrying its identity in the format of package identity. It is what
// clover cert runs.
//
// Keys are ECDSA P-256, written as PKCS #8 PEM with mode 0600;
// certificates are PEM with mode 0644:
//
//	ca.crt, ca.key                 the cluster CA (URI SAN spiffe://<cluster>)
//	node.<id>.crt, node.<id>.key   a node: server and client authentication
//	user.<name>.crt, user.<name>.key  a user: client authentication only
//
// Use:
//
//	_, err := pki.CreateCA(dir, "prod", 0) // 0: ten years
//	_, err = pki.CreateNode(dir, "ie-1", placement.Locality{Country: "IE", Region: "ie-dublin", Zone: "a"},
//		[]string{"10.0.0.1", "ie-1.internal"}, pki.Options{}) // one year
//	roles, err := identity.ParseRoles("reader,writer")
//	_, err = pki.CreateUser(dir, "alice", roles, "IE", pki.Options{Lifetime: 90 * 24 * time.Hour})
//	var in *pki.InputError
//	if errors.As(err, &in) { ... in.Field names the bad value ... }
//	entries, err := pki.List(dir) // identity, expiry, chain to the CA of each
//
// A CA is never overwritten; a node's or user's files only with
// Options.Overwrite (which replaces each file in one rename). A leaf may
// not outlast its CA. Nothing here reads a clock other than to date a new
// certificate, and nothing talks to a cluster.
package pki
