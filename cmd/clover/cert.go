package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/identity"
	"github.com/clover-kv/clover/internal/pki"
	"github.com/clover-kv/clover/placement"
)

// clusterFlags are the root's flags of cluster connections, which the cert
// commands neither need nor read (left out of their help).
var clusterFlags = []string{"endpoints", "direct", "timeout", "tls-cert", "tls-key", "tls-ca", "insecure"}

// newCertCmd is clover cert: the cluster's PKI as files (internal/pki). It
// talks to no cluster: its own hook replaces the root's, so that nothing
// the root does for cluster commands runs, and only the flag checks do.
func newCertCmd(g *globals) *cobra.Command {
	var dir string
	cert := &cobra.Command{
		Use:   "cert",
		Short: "The cluster's certificates, made and read as files (no cluster needed): create-ca, create-node, create-user, list, show",
		Long: "clover cert makes the cluster CA and a certificate for each node and user, in --certs-dir\n" +
			"(docs/OPERATIONS.md, \"PKI and identities\"). A node's certificate attests its ID and locality,\n" +
			"a user's its roles and the jurisdiction it works from. Keep ca.key offline: whoever holds it\n" +
			"can issue any identity.",
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return g.checkFlags(cmd) },
	}
	def := os.Getenv("CLOVER_CERTS_DIR")
	if def == "" {
		def = "certs"
	}
	cert.PersistentFlags().StringVar(&dir, "certs-dir", def, "directory of the CA, certificates and keys (env CLOVER_CERTS_DIR)")
	cert.AddCommand(certCreateCA(g, &dir), certCreateNode(g, &dir), certCreateUser(g, &dir), certList(g, &dir), certShow(g))
	return cert
}

func certCreateCA(g *globals, dir *string) *cobra.Command {
	var cluster string
	var lifetime time.Duration
	cmd := &cobra.Command{
		Use:     "create-ca",
		Short:   "Create the cluster CA (ca.crt, ca.key); an existing CA is never overwritten",
		Example: "  clover cert create-ca --cluster prod --certs-dir /etc/clover/certs",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := positive(lifetime); err != nil {
				return err
			}
			is, err := pki.CreateCA(*dir, cluster, lifetime)
			if err != nil {
				return certErr(err, map[pki.Field]string{pki.FieldTrustDomain: "--cluster", pki.FieldLifetime: "--lifetime"})
			}
			return g.created(is)
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "the cluster's name, its trust domain: a-z, 0-9, '-' in dot-separated labels (required)")
	cmd.Flags().DurationVar(&lifetime, "lifetime", pki.DefaultCALifetime, "how long the CA is valid")
	_ = cmd.MarkFlagRequired("cluster")
	return cmd
}

func certCreateNode(g *globals, dir *string) *cobra.Command {
	var id, country, region, zone string
	var hosts []string
	var opts pki.Options
	cmd := &cobra.Command{
		Use:   "create-node",
		Short: "Issue a node's certificate (node.<id>.crt, .key): its ID, locality and addresses",
		Example: "  clover cert create-node --node-id ie-1 --country IE --region ie-dublin --zone a --host 10.0.0.1,ie-1.internal\n" +
			"  clover cert create-node --node-id no-1 --country NO --host 127.0.0.1 --overwrite   # replace its certificate",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := positive(opts.Lifetime); err != nil {
				return err
			}
			loc := placement.Locality{Country: strings.ToUpper(strings.TrimSpace(country)), Region: region, Zone: zone}
			is, err := pki.CreateNode(*dir, id, loc, hosts, opts)
			if err != nil {
				return certErr(err, map[pki.Field]string{pki.FieldName: "--node-id", pki.FieldLocality: "--country, --region, --zone",
					pki.FieldHosts: "--host", pki.FieldLifetime: "--lifetime"})
			}
			return g.created(is)
		},
	}
	f := cmd.Flags()
	f.StringVar(&id, "node-id", "", "the node's ID, as cloverd --node-id (required)")
	f.StringVar(&country, "country", "", "ISO 3166-1 alpha-2 code of the country the node runs in (required)")
	f.StringVar(&region, "region", "", "the node's region, e.g. ie-dublin")
	f.StringVar(&zone, "zone", "", "the node's zone within its region, e.g. a")
	f.StringSliceVar(&hosts, "host", nil, "IP addresses and DNS names the node is reached at, comma-separated or repeated (required)")
	leafFlags(cmd, &opts)
	for _, name := range []string{"node-id", "country", "host"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

func certCreateUser(g *globals, dir *string) *cobra.Command {
	var name, roles, jurisdiction string
	var opts pki.Options
	cmd := &cobra.Command{
		Use:   "create-user",
		Short: "Issue a user's certificate (user.<name>.crt, .key): its roles and jurisdiction",
		Example: "  clover cert create-user --name alice --roles reader,writer --jurisdiction IE\n" +
			"  clover cert create-user --name audit-1 --roles auditor --jurisdiction DE --lifetime 720h",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := positive(opts.Lifetime); err != nil {
				return err
			}
			rs, err := identity.ParseRoles(roles)
			if err != nil {
				return fmt.Errorf("%w: --roles: %w", client.ErrInvalidArgument, err)
			}
			is, err := pki.CreateUser(*dir, name, rs, strings.ToUpper(strings.TrimSpace(jurisdiction)), opts)
			if err != nil {
				return certErr(err, map[pki.Field]string{pki.FieldName: "--name", pki.FieldRoles: "--roles",
					pki.FieldCountry: "--jurisdiction", pki.FieldLifetime: "--lifetime"})
			}
			return g.created(is)
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "the user's name: 1-64 of a-z, 0-9, '.', '_', '-' (required)")
	f.StringVar(&roles, "roles", "", "comma-separated: reader, writer, admin, auditor (required)")
	f.StringVar(&jurisdiction, "jurisdiction", "", "ISO 3166-1 alpha-2 code of the country the user works from (required)")
	leafFlags(cmd, &opts)
	for _, n := range []string{"name", "roles", "jurisdiction"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

// leafFlags are the flags of a node's or user's certificate.
func leafFlags(cmd *cobra.Command, opts *pki.Options) {
	cmd.Flags().DurationVar(&opts.Lifetime, "lifetime", pki.DefaultLeafLifetime, "how long the certificate is valid (not beyond the CA)")
	cmd.Flags().BoolVar(&opts.Overwrite, "overwrite", false, "replace the existing certificate and key of this node or user")
}

func certList(g *globals, dir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "Every certificate in --certs-dir: identity, expiry, whether the CA signed it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			es, err := pki.List(*dir)
			if err != nil {
				return fmt.Errorf("%w: --certs-dir: %w", errUsage, err)
			}
			return g.showCerts(es)
		},
	}
}

func certShow(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "show FILE",
		Short:   "One certificate: identity, names, validity, usage, and whether the ca.crt beside it signed it",
		Example: "  clover cert show certs/node.ie-1.crt",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := pki.Show(args[0])
			if err != nil {
				return err
			}
			return g.showCert(e)
		},
	}
}

// positive refuses a --lifetime that is not positive.
func positive(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%w: --lifetime %v: want a positive duration such as 8760h", client.ErrInvalidArgument, d)
	}
	return nil
}

// certErr names the flag of a refused value (an invalid argument); other
// errors pass as they are (pki.ErrExists, ErrNoCA, ErrBadFile are usage
// errors, see exitcode.go).
func certErr(err error, flags map[pki.Field]string) error {
	var in *pki.InputError
	if errors.As(err, &in) {
		flag, ok := flags[in.Field]
		if !ok {
			flag = string(in.Field)
		}
		return fmt.Errorf("%w: %s: %w", client.ErrInvalidArgument, flag, in.Err)
	}
	if errors.Is(err, pki.ErrExists) && flags[pki.FieldName] != "" {
		return fmt.Errorf("%w; --overwrite replaces them", err)
	}
	return err
}
