// Package cloverdb is clover-bench's driver for Clover: a bench.DB over the
// Clover client, the keyspace set-up, and an in-process three-node cluster
// to run against when no endpoints are given.
//
//	lc, err := cloverdb.StartLocal(ctx, cloverdb.LocalConfig{})
//	defer lc.Close()
//	cfg := cloverdb.Config{Endpoints: lc.Endpoints()}
//	err = cloverdb.Prepare(ctx, cfg)
//	db, err := cloverdb.Open(ctx, cfg)
package cloverdb

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clover-kv/clover/bench"
	"github.com/clover-kv/clover/client"
)

// Read consistencies.
const (
	ReadLinearizable = "linearizable"
	ReadFollower     = "follower"
)

// Config says how the driver reaches the cluster and what it reads and
// writes.
type Config struct {
	// Endpoints are node gRPC addresses. Required.
	Endpoints []string
	// Keyspace is created by Prepare when missing. Default "bench".
	Keyspace string
	// Shards of a keyspace Prepare creates. Default 8.
	Shards int
	// Policy of a keyspace Prepare creates. The zero Policy means residency
	// EEA; zero Replicas means 3.
	Policy client.Policy
	// Read is linearizable (default) or follower.
	Read string
	// MaxStale bounds the staleness of follower reads. Default 100ms.
	MaxStale time.Duration
	// TLS, if set, secures the connections with the benchmark's user
	// certificate (a cluster in secure mode); nil: plaintext, to a cluster
	// in insecure mode.
	TLS *tls.Config
}

func (c Config) withDefaults() Config {
	if c.Keyspace == "" {
		c.Keyspace = "bench"
	}
	if c.Shards == 0 {
		c.Shards = 8
	}
	if c.Policy.Replicas == 0 && len(c.Policy.AllowJurisdictions) == 0 && len(c.Policy.AllowCountries) == 0 {
		c.Policy.AllowJurisdictions = []string{"EEA"}
	}
	if c.Policy.Replicas == 0 {
		c.Policy.Replicas = 3
	}
	if c.Read == "" {
		c.Read = ReadLinearizable
	}
	if c.MaxStale == 0 {
		c.MaxStale = 100 * time.Millisecond
	}
	return c
}

// Settings describes the config for a result's record.
func (c Config) Settings() map[string]string {
	c = c.withDefaults()
	residency := strings.Join(slices.Concat(c.Policy.AllowJurisdictions, c.Policy.AllowCountries), ",")
	if residency == "" {
		residency = "anywhere"
	}
	s := map[string]string{"keyspace": c.Keyspace, "shards": strconv.Itoa(c.Shards), "read": c.Read,
		"residency": residency, "replicas": strconv.Itoa(c.Policy.Replicas)}
	if c.Read == ReadFollower {
		s["max-stale"] = c.MaxStale.String()
	}
	return s
}

func (c Config) validate() error {
	if len(c.Endpoints) == 0 {
		return errors.New("clover driver: no endpoints")
	}
	if c.Read != ReadLinearizable && c.Read != ReadFollower {
		return fmt.Errorf("clover driver: read %q: want %s or %s", c.Read, ReadLinearizable, ReadFollower)
	}
	if c.Shards < 1 || c.MaxStale < 0 {
		return fmt.Errorf("clover driver: shards %d, max stale %v: want shards >= 1 and max stale >= 0", c.Shards, c.MaxStale)
	}
	return nil
}

// Prepare creates the keyspace if it does not exist and waits until every
// one of its shards has a leader.
func Prepare(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	cl, err := client.New(ctx, client.Config{Endpoints: cfg.Endpoints, TLS: cfg.TLS, Insecure: cfg.TLS == nil})
	if err != nil {
		return err
	}
	defer cl.Close()
	if _, err := cl.Keyspace(ctx, cfg.Keyspace); errors.Is(err, client.ErrUnknownKeyspace) {
		_, err = cl.CreateKeyspace(ctx, cfg.Keyspace, cfg.Shards, cfg.Policy)
		if err != nil && !errors.Is(err, client.ErrKeyspaceExists) {
			return fmt.Errorf("create keyspace %s: %w", cfg.Keyspace, err)
		}
	} else if err != nil {
		return fmt.Errorf("keyspace %s: %w", cfg.Keyspace, err)
	}
	return waitLeaders(ctx, cl, cfg.Keyspace)
}

// waitLeaders polls the keyspace until every shard reports a leader.
func waitLeaders(ctx context.Context, cl *client.Client, keyspace string) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		ks, err := cl.Keyspace(ctx, keyspace)
		if err == nil && len(ks.Shards) > 0 && allLed(ks) {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("not every shard has a leader")
			}
			return fmt.Errorf("keyspace %s not ready: %w (%w)", keyspace, ctx.Err(), err)
		case <-t.C:
		}
	}
}

func allLed(ks client.Keyspace) bool {
	for _, s := range ks.Shards {
		if s.Leader == "" {
			return false
		}
	}
	return true
}

// DB is one Clover client: its own connections to every node.
type DB struct {
	cl       *client.Client
	keyspace string
	read     []client.ReadOption
}

var _ bench.DB = (*DB)(nil)

// Open connects a new client.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cl, err := client.New(ctx, client.Config{Endpoints: cfg.Endpoints, TLS: cfg.TLS, Insecure: cfg.TLS == nil})
	if err != nil {
		return nil, err
	}
	db := &DB{cl: cl, keyspace: cfg.Keyspace}
	if cfg.Read == ReadFollower {
		db.read = []client.ReadOption{client.Follower(cfg.MaxStale)}
	}
	return db, nil
}

// Read implements bench.DB.
func (d *DB) Read(ctx context.Context, key []byte) error {
	_, err := d.cl.Get(ctx, d.keyspace, key, d.read...)
	if errors.Is(err, client.ErrNotFound) {
		return bench.ErrNotFound
	}
	return err
}

// Put implements bench.DB.
func (d *DB) Put(ctx context.Context, key, value []byte) error {
	_, err := d.cl.Put(ctx, d.keyspace, key, value)
	return err
}

// Scan implements bench.DB: one page of up to n keys from start.
func (d *DB) Scan(ctx context.Context, start []byte, n int) (int, error) {
	kvs, _, err := d.cl.Scan(ctx, d.keyspace, client.WithRange(start, nil), client.WithLimit(n), client.WithRead(d.read...))
	return len(kvs), err
}

// Close implements bench.DB.
func (d *DB) Close() error { return d.cl.Close() }
