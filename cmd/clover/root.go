package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/internal/buildinfo"
	"github.com/clover-kv/clover/internal/tlsfiles"
)

type globals struct {
	endpoints []string
	direct    bool
	output    string
	timeout   time.Duration
	// TLS files: a client certificate of the cluster CA, its key, the CA.
	tlsCert, tlsKey, tlsCA string
	// insecure: plaintext, to a cluster in insecure mode.
	insecure bool
	// auditCluster: clover audit --cluster, the cluster name checkpoints
	// are checked against.
	auditCluster string
	out          io.Writer
}

func newRootCmd() *cobra.Command {
	g := &globals{out: os.Stdout}
	root := &cobra.Command{
		Use:   "clover",
		Short: "Clover: a key-value store that keeps each keyspace inside its jurisdictions",
		Long: "clover reads and writes keys, manages keyspaces and their placement policies, and shows\n" +
			"where data lives; clover cert makes the cluster's certificates. -w json gives output for scripts\n" +
			"(docs/OPERATIONS.md, \"JSON output\").\n\n" +
			exitCodesHelp(),
		Version:       buildinfo.Read().String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		// The hook of the cluster commands. A command group that needs no
		// cluster (cert) sets its own, which cobra runs instead of this one.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return g.checkFlags(cmd) },
	}
	def := []string{"127.0.0.1:7401"}
	if v := os.Getenv("CLOVER_ENDPOINTS"); v != "" {
		def = strings.Split(v, ",")
	}
	pf := root.PersistentFlags()
	pf.StringSliceVar(&g.endpoints, "endpoints", def, "node gRPC addresses (env CLOVER_ENDPOINTS)")
	pf.BoolVar(&g.direct, "direct", false, "send requests to the first endpoint as they are, without routing to shard leaders")
	pf.StringVarP(&g.output, "output", "w", "table", "output format: table or json")
	pf.DurationVar(&g.timeout, "timeout", 10*time.Second, "timeout of the whole command")
	pf.StringVar(&g.tlsCert, "tls-cert", os.Getenv("CLOVER_TLS_CERT"), "PEM user certificate signed by the cluster CA: who you are to the cluster (env CLOVER_TLS_CERT)")
	pf.StringVar(&g.tlsKey, "tls-key", os.Getenv("CLOVER_TLS_KEY"), "PEM private key of --tls-cert (env CLOVER_TLS_KEY)")
	pf.StringVar(&g.tlsCA, "tls-ca", os.Getenv("CLOVER_TLS_CA"), "PEM bundle of the cluster CA (env CLOVER_TLS_CA)")
	insecureDef, _ := strconv.ParseBool(os.Getenv("CLOVER_INSECURE"))
	pf.BoolVar(&g.insecure, "insecure", insecureDef, "connect without certificates, to a cluster in insecure mode (development only; env CLOVER_INSECURE)")
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.AddCommand(newKVCmd(g), newKeyspaceCmd(g), newClusterCmd(g), newPlacementCmd(g), newWhoAmICmd(g), newAuditCmd(g))
	cert := newCertCmd(g)
	root.AddCommand(cert)
	hideFlagsInHelp(cert, clusterFlags)
	markUsageErrors(root)
	return root
}

// checkFlags checks the flags every command shares and sets where output
// goes; it runs before each command.
func (g *globals) checkFlags(cmd *cobra.Command) error {
	g.out = cmd.OutOrStdout()
	if g.output != "table" && g.output != "json" {
		return fmt.Errorf("%w: --output %q: want table or json", errUsage, g.output)
	}
	// Checked here, ahead of cobra, so that they count as usage errors.
	if err := cmd.ValidateRequiredFlags(); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if err := cmd.ValidateFlagGroups(); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return nil
}

// hideFlagsInHelp leaves the root's persistent flags names out of the help
// of cmd and its subcommands (flags they do not read).
func hideFlagsInHelp(cmd *cobra.Command, names []string) {
	help := cmd.HelpFunc()
	cmd.SetHelpFunc(func(c *cobra.Command, args []string) {
		for _, n := range names {
			if f := c.Root().PersistentFlags().Lookup(n); f != nil {
				f.Hidden = true
			}
		}
		help(c, args)
	})
}

// errUsage marks errors in how the command was called: unknown commands and
// flags, wrong arguments, bad flag values.
var errUsage = errors.New("usage")

// markUsageErrors makes argument and flag errors of cmd and its subcommands,
// and unknown subcommands, wrap errUsage (exit code 2).
func markUsageErrors(cmd *cobra.Command) {
	if cmd.HasSubCommands() && cmd.RunE == nil && cmd.Run == nil {
		// A command group: without arguments it shows its help, with an
		// unknown subcommand it fails.
		cmd.Args = cobra.ArbitraryArgs
		cmd.RunE = func(c *cobra.Command, a []string) error {
			if len(a) > 0 {
				return fmt.Errorf("%w: unknown command %q for %q", errUsage, a[0], c.CommandPath())
			}
			return c.Help()
		}
	}
	if args := cmd.Args; args != nil {
		cmd.Args = func(c *cobra.Command, a []string) error {
			if err := args(c, a); err != nil {
				return fmt.Errorf("%w: %w", errUsage, err)
			}
			return nil
		}
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return fmt.Errorf("%w: %w", errUsage, err)
	})
	for _, sub := range cmd.Commands() {
		markUsageErrors(sub)
	}
}

// connect returns a client and a context bounded by --timeout.
func (g *globals) connect(cmd *cobra.Command) (context.Context, *client.Client, func(), error) {
	cfg := client.Config{Endpoints: g.endpoints, Direct: g.direct, Insecure: g.insecure}
	switch secure := g.tlsCert != "" || g.tlsKey != "" || g.tlsCA != ""; {
	case secure && g.insecure:
		return nil, nil, nil, fmt.Errorf("%w: --insecure with --tls-cert, --tls-key, --tls-ca: choose one", errUsage)
	case !secure && !g.insecure:
		return nil, nil, nil, fmt.Errorf("%w: no certificate: give --tls-cert, --tls-key and --tls-ca (or CLOVER_TLS_CERT, CLOVER_TLS_KEY, CLOVER_TLS_CA; "+
			"make them with clover cert), or --insecure for a cluster in insecure mode", errUsage)
	case secure:
		var err error
		if cfg.TLS, err = tlsfiles.Client(g.tlsCert, g.tlsKey, g.tlsCA); err != nil {
			return nil, nil, nil, fmt.Errorf("%w: --tls-cert, --tls-key, --tls-ca: %w", errUsage, err)
		}
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
	c, err := client.New(ctx, cfg)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return ctx, c, func() { c.Close(); cancel() }, nil
}
