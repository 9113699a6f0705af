// Package etcddb is clover-bench's driver for etcd, the baseline of the
// comparison: a bench.DB over etcd's v3 client, with keys under the
// keyspace name as a prefix.
//
//	db, err := etcddb.Open(ctx, etcddb.Config{Endpoints: []string{"127.0.0.1:2379"}})
package etcddb

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/clover-kv/clover/bench"
)

// Read consistencies.
const (
	ReadLinearizable = "linearizable"
	ReadSerializable = "serializable"
)

// Config says how the driver reaches etcd.
type Config struct {
	// Endpoints are etcd client addresses (host:port or URLs). Required.
	Endpoints []string
	// Keyspace prefixes every key as "keyspace/". Default "bench".
	Keyspace string
	// Read is linearizable (default) or serializable (served by any member
	// from its local state).
	Read string
	// DialTimeout bounds connecting. Default 5s.
	DialTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.Keyspace == "" {
		c.Keyspace = "bench"
	}
	if c.Read == "" {
		c.Read = ReadLinearizable
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	return c
}

// Settings describes the config for a result's record.
func (c Config) Settings() map[string]string {
	c = c.withDefaults()
	return map[string]string{"keyspace": c.Keyspace, "read": c.Read}
}

// DB is one etcd client: its own gRPC connection.
type DB struct {
	cl       *clientv3.Client
	prefix   []byte
	rangeEnd string // end of the keyspace's key range
	read     []clientv3.OpOption
}

var _ bench.DB = (*DB)(nil)

// Open connects a client and checks that the cluster answers. It returns
// the version of the first endpoint's server.
func Open(ctx context.Context, cfg Config) (*DB, string, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Endpoints) == 0 {
		return nil, "", errors.New("etcd driver: no endpoints")
	}
	if cfg.Read != ReadLinearizable && cfg.Read != ReadSerializable {
		return nil, "", fmt.Errorf("etcd driver: read %q: want %s or %s", cfg.Read, ReadLinearizable, ReadSerializable)
	}
	cl, err := clientv3.New(clientv3.Config{Endpoints: cfg.Endpoints, DialTimeout: cfg.DialTimeout, Logger: zap.NewNop(), Context: ctx})
	if err != nil {
		return nil, "", fmt.Errorf("etcd driver: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	st, err := cl.Status(sctx, cfg.Endpoints[0])
	if err != nil {
		cl.Close()
		return nil, "", fmt.Errorf("etcd driver: status of %s: %w", cfg.Endpoints[0], err)
	}
	prefix := cfg.Keyspace + "/"
	db := &DB{cl: cl, prefix: []byte(prefix), rangeEnd: clientv3.GetPrefixRangeEnd(prefix)}
	if cfg.Read == ReadSerializable {
		db.read = []clientv3.OpOption{clientv3.WithSerializable()}
	}
	return db, st.Version, nil
}

func (d *DB) key(k []byte) string {
	b := make([]byte, 0, len(d.prefix)+len(k))
	return string(append(append(b, d.prefix...), k...))
}

// Read implements bench.DB.
func (d *DB) Read(ctx context.Context, key []byte) error {
	resp, err := d.cl.Get(ctx, d.key(key), d.read...)
	if err != nil {
		return err
	}
	if len(resp.Kvs) == 0 {
		return bench.ErrNotFound
	}
	return nil
}

// Put implements bench.DB.
func (d *DB) Put(ctx context.Context, key, value []byte) error {
	_, err := d.cl.Put(ctx, d.key(key), string(value))
	return err
}

// Scan implements bench.DB: a range read of up to n keys from start to the
// end of the keyspace.
func (d *DB) Scan(ctx context.Context, start []byte, n int) (int, error) {
	opts := append([]clientv3.OpOption{clientv3.WithRange(d.rangeEnd), clientv3.WithLimit(int64(n))}, d.read...)
	resp, err := d.cl.Get(ctx, d.key(start), opts...)
	if err != nil {
		return 0, err
	}
	return len(resp.Kvs), nil
}

// Close implements bench.DB.
func (d *DB) Close() error { return d.cl.Close() }
