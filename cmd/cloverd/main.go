// Command cloverd runs one Clover node.
//
//	cloverd --node-id ie-1 --locality country=IE,region=ie-dublin,zone=a \
//	        --data-dir /var/lib/clover --bootstrap
//
// Settings come from flags, CLOVER_* environment variables and a YAML file
// (--config), in that order of precedence. See docs/OPERATIONS.md.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"syscall"

	"github.com/clover-kv/clover/internal/buildinfo"
	"github.com/clover-kv/clover/internal/nodeconfig"
	"github.com/clover-kv/clover/server"
)

func main() {
	os.Exit(run())
}

func run() int {
	cfg, opts, err := nodeconfig.Load(os.Args[1:], os.LookupEnv)
	if opts.Help {
		fmt.Fprintf(os.Stderr, "Usage: cloverd [flags]\n\n%s", nodeconfig.FlagSet().FlagUsages())
		return 0
	}
	if opts.Version {
		fmt.Println("cloverd", buildinfo.Read())
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cloverd: %v\n", err)
		return 2
	}
	cfg.Logger = newLogger(opts)
	if opts.PprofAddr != "" {
		ln, err := net.Listen("tcp", opts.PprofAddr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "cloverd: pprof-addr: %v\n", err)
			return 2
		}
		go func() { _ = http.Serve(ln, nil) }() // net/http/pprof registers on the default mux
		cfg.Logger.Info("serving profiles", "addr", ln.Addr().String())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := server.New(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cloverd: %v\n", err)
		return 1
	}
	if err := s.Start(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "cloverd: %v\n", err)
		return 1
	}
	select {
	case <-s.Ready():
		cfg.Logger.Info("node ready", "node", cfg.NodeID, "grpc", s.GRPCAddr(), "gossip", s.GossipAddr(), "version", buildinfo.Read().String())
	case <-ctx.Done():
	case <-s.Failed():
	}
	select {
	case <-ctx.Done():
	case <-s.Failed():
		_ = s.Close()
		fmt.Fprintf(os.Stderr, "cloverd: %v\n", s.FailErr())
		return 1
	}
	cfg.Logger.Info("shutting down", "node", cfg.NodeID)
	if err := s.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "cloverd: close: %v\n", err)
		return 1
	}
	return 0
}

func newLogger(o nodeconfig.Options) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(o.LogLevel))
	ho := &slog.HandlerOptions{Level: lvl}
	if o.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, ho))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, ho))
}
