package cloverdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/clover-kv/clover/placement"
	"github.com/clover-kv/clover/server"
)

// LocalConfig configures an in-process cluster.
type LocalConfig struct {
	// Dir holds the nodes' data. Default: a new temporary directory, removed
	// by Close.
	Dir string
	// Log receives the nodes' logs. Default: discarded.
	Log io.Writer
}

// LocalNodes are the nodes of an in-process cluster: three EEA nodes, two in
// Dublin (zones a and b) and one in Hamar.
var LocalNodes = []struct{ ID, Locality string }{
	{"ie-1", "country=IE,region=ie-dublin,zone=a"},
	{"ie-2", "country=IE,region=ie-dublin,zone=b"},
	{"no-1", "country=NO,region=no-hamar,zone=a"},
}

// Local is a running in-process cluster of LocalNodes on loopback with
// Clover's default settings.
type Local struct {
	servers []*server.Server
	dir     string
	tempDir bool
}

// StartLocal starts the cluster (the first node bootstraps it, the others
// join through it) and returns once every node is ready or ctx ends.
func StartLocal(ctx context.Context, cfg LocalConfig) (_ *Local, err error) {
	l := &Local{dir: cfg.Dir}
	if l.dir == "" {
		if l.dir, err = os.MkdirTemp("", "clover-bench-"); err != nil {
			return nil, err
		}
		l.tempDir = true
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	var seed string
	for i, n := range LocalNodes {
		loc, err := placement.ParseLocality(n.Locality)
		if err != nil {
			return nil, err
		}
		sc := server.DefaultConfig()
		sc.NodeID, sc.Locality = n.ID, loc
		sc.DataDir = filepath.Join(l.dir, n.ID)
		sc.ListenGRPC, sc.ListenRaft, sc.ListenGossip = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		sc.Bootstrap = i == 0
		// A benchmark's own in-process cluster on loopback: plaintext.
		sc.Insecure = true
		if i > 0 {
			sc.Join = []string{seed}
		}
		sc.Logger = slog.New(slog.NewTextHandler(logw, nil)).With("node", n.ID)
		s, err := server.New(sc)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.ID, err)
		}
		if err := s.Start(ctx); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("node %s: start: %w", n.ID, err)
		}
		l.servers = append(l.servers, s)
		if i == 0 {
			seed = s.GossipAddr()
			if err := waitReady(ctx, s); err != nil {
				return nil, err
			}
		}
	}
	for _, s := range l.servers {
		if err := waitReady(ctx, s); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func waitReady(ctx context.Context, s *server.Server) error {
	select {
	case <-s.Ready():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("node %s not ready: %w", s.NodeID(), ctx.Err())
	}
}

// Endpoints are the nodes' gRPC addresses.
func (l *Local) Endpoints() []string {
	out := make([]string, len(l.servers))
	for i, s := range l.servers {
		out[i] = s.GRPCAddr()
	}
	return out
}

// Close stops every node and removes a temporary data directory.
func (l *Local) Close() error {
	var errs []error
	for _, s := range l.servers {
		errs = append(errs, s.Close())
	}
	l.servers = nil
	if l.tempDir {
		errs = append(errs, os.RemoveAll(l.dir))
	}
	return errors.Join(errs...)
}
