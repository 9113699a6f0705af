package client_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/placement"
	"github.com/clover-kv/clover/server"
)

// The examples run against a two-node in-process cluster that TestMain
// starts: ie-1 in Ireland and us-1 in the US, with the keyspace "users"
// (EEA, one replica per shard, four shards) on ie-1.
var (
	// endpoints are the gRPC addresses of both nodes, ie-1 first.
	endpoints []string
	// usEndpoint is the gRPC address of us-1, outside the EEA.
	usEndpoint string
)

func TestMain(m *testing.M) {
	os.Exit(runWithCluster(m))
}

func runWithCluster(m *testing.M) int {
	dir, err := os.MkdirTemp("", "clover-client-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	nodes, err := startCluster(dir)
	defer func() {
		for i := len(nodes) - 1; i >= 0; i-- {
			_ = nodes[i].Close()
		}
	}()
	if err != nil {
		fmt.Fprintf(os.Stderr, "start cluster: %v\n", err)
		return 1
	}
	return m.Run()
}

// startCluster starts ie-1 (founding the cluster) and us-1 (joining it) on
// ports the kernel picks, waits until both have joined and creates "users".
// It returns the nodes started so far, also on error.
func startCluster(dir string) ([]*server.Server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var nodes []*server.Server
	for i, n := range []struct{ id, locality string }{
		{"ie-1", "country=IE,region=ie-dublin,zone=a"},
		{"us-1", "country=US,region=us-east,zone=a"},
	} {
		loc, err := placement.ParseLocality(n.locality)
		if err != nil {
			return nodes, err
		}
		cfg := server.DefaultConfig()
		cfg.NodeID, cfg.Locality, cfg.DataDir = n.id, loc, filepath.Join(dir, n.id)
		cfg.Insecure = true
		cfg.ListenGRPC, cfg.ListenRaft, cfg.ListenGossip = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		if i == 0 {
			cfg.Bootstrap = true
		} else {
			cfg.Join = []string{nodes[0].GossipAddr()}
		}
		cfg.Raft.HeartbeatTimeout = 300 * time.Millisecond
		cfg.Raft.ElectionTimeout = 300 * time.Millisecond
		cfg.Raft.LeaderLeaseTimeout = 150 * time.Millisecond
		cfg.Raft.CommitTimeout = 10 * time.Millisecond
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		s, err := server.New(cfg)
		if err != nil {
			return nodes, fmt.Errorf("%s: %w", n.id, err)
		}
		if err := s.Start(ctx); err != nil {
			return nodes, fmt.Errorf("%s: %w", n.id, err)
		}
		nodes = append(nodes, s)
		select {
		case <-s.Ready():
		case <-ctx.Done():
			return nodes, fmt.Errorf("%s: not ready: %w", n.id, ctx.Err())
		}
		endpoints = append(endpoints, s.GRPCAddr())
	}
	usEndpoint = nodes[1].GRPCAddr()

	c, err := client.New(ctx, client.Config{Insecure: true, Endpoints: endpoints})
	if err != nil {
		return nodes, err
	}
	defer c.Close()
	if _, err := c.CreateKeyspace(ctx, "users", 4, client.Policy{AllowJurisdictions: []string{"EEA"}, Replicas: 1, Class: "personal"}); err != nil {
		return nodes, err
	}
	// Each node answers from its own copy of the catalogue: wait until both
	// know "users", so that us-1 refuses it rather than not knowing it.
	for _, addr := range endpoints {
		if err := waitKeyspace(ctx, addr, "users"); err != nil {
			return nodes, err
		}
	}
	return nodes, nil
}

// waitKeyspace polls one node until its catalogue holds the keyspace.
func waitKeyspace(ctx context.Context, addr, name string) error {
	c, err := client.New(ctx, client.Config{Insecure: true, Endpoints: []string{addr}, Direct: true})
	if err != nil {
		return err
	}
	defer c.Close()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := c.Keyspace(ctx, name)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s does not know keyspace %s: %w", addr, name, err)
		case <-tick.C:
		}
	}
}
