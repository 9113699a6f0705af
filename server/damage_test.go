package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/internal/testcluster"
	"github.com/clover-kv/clover/raftfsm"
	"github.com/clover-kv/clover/server"
)

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// putKeys writes n keys with random values and returns the values by key.
func putKeys(ctx context.Context, t *testing.T, cl *client.Client, ks string, n, size int) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for i := range n {
		k, v := fmt.Sprintf("user/%04d", i), randomBytes(t, size)
		if _, err := cl.Put(ctx, ks, []byte(k), v); err != nil {
			t.Fatalf("put: %v", err)
		}
		out[k] = v
	}
	return out
}

// withStore opens a stopped node's store directly.
func withStore(t *testing.T, n *testcluster.Node, f func(db *pebble.DB)) {
	t.Helper()
	db, err := raftfsm.OpenDB(filepath.Join(n.DataDir, "pebble"), raftfsm.DBOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open %s's store: %v", n.Spec.ID, err)
	}
	f(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func checkReplicas(ctx context.Context, t *testing.T, cl *client.Client, ks string) client.ReplicaCheck {
	t.Helper()
	rep, err := cl.CheckReplicas(ctx, ks, 20*time.Second)
	if err != nil {
		t.Fatalf("check replicas: %v", err)
	}
	return rep
}

// waitIdentical waits until the one shard of keyspace "users" has three
// identical replicas of keys keys.
func waitIdentical(ctx context.Context, t *testing.T, c *testcluster.Cluster, cl *client.Client, keys uint64) {
	t.Helper()
	c.WaitFor(60*time.Second, fmt.Sprintf("three identical replicas of %d keys", keys), func() bool {
		rep, err := cl.CheckReplicas(ctx, "users", 5*time.Second)
		return err == nil && rep.OK && len(rep.Shards) == 1 && len(rep.Shards[0].Replicas) == 3 && rep.Shards[0].Replicas[0].Keys == keys
	})
}

// snapshotOften makes every group snapshot and compact its log after a few
// dozen entries.
func snapshotOften(cfg *server.Config) {
	cfg.Raft.SnapshotThreshold = 32
	cfg.Raft.SnapshotInterval = 50 * time.Millisecond
	cfg.Raft.TrailingLogs = 16
}

// CheckReplicas reports identical replicas as such, and a replica whose
// data differs at the same applied index as diverged.
func TestCheckReplicasFindsDivergence(t *testing.T) {
	c := testcluster.Start(t, testcluster.DemoNodes()[:3])
	ctx := ctxT(t)
	cl := c.Client(t)
	ks, err := cl.CreateKeyspace(ctx, "users", 2, eea)
	if err != nil {
		t.Fatal(err)
	}
	putKeys(ctx, t, cl, "users", 60, 64)

	rep := checkReplicas(ctx, t, cl, "users")
	keys := uint64(0)
	for _, s := range rep.Shards {
		if s.Status != "identical" || len(s.Replicas) != 3 {
			t.Fatalf("shard %d: %s with %d replicas, want identical with 3: %+v", s.ShardID, s.Status, len(s.Replicas), s.Replicas)
		}
		keys += s.Replicas[0].Keys
	}
	if !rep.OK || len(rep.Shards) != 2 || keys != 60 {
		t.Fatalf("check: ok %v, %d shards, %d keys; want ok, 2 shards, 60 keys", rep.OK, len(rep.Shards), keys)
	}

	// A key written behind Raft's back on one replica.
	victim := ks.Shards[1].ID
	c.StopNode("no-1")
	withStore(t, c.Node("no-1"), func(db *pebble.DB) {
		rec := binary.BigEndian.AppendUint64(nil, 1)
		if err := db.Set(raftfsm.DataKey(victim, []byte("ghost")), append(rec, "boo"...), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	})
	c.StartNode("no-1")
	c.WaitReady("no-1")
	rep = checkReplicas(ctx, t, cl, "users")
	if rep.OK {
		t.Fatal("check passed with a diverged replica")
	}
	for _, s := range rep.Shards {
		want := "identical"
		if s.ShardID == victim {
			want = "diverged"
		}
		if s.Status != want {
			t.Fatalf("shard %d: %s, want %s: %+v", s.ShardID, s.Status, want, s.Replicas)
		}
	}
	if _, err := cl.CheckReplicas(ctx, "nope", 0); !errors.Is(err, client.ErrUnknownKeyspace) {
		t.Fatalf("unknown keyspace: %v", err)
	}
}

// A replica whose stored records fail their checksums (its applied-index
// record, or its newest snapshot) is not run; the cluster removes it and
// adds the node back as an empty member that catches up from the healthy
// replicas, and the replicas end identical.
func TestDamagedReplicaIsReplaced(t *testing.T) {
	for _, what := range []string{"applied record", "snapshot"} {
		t.Run(strings.ReplaceAll(what, " ", "-"), func(t *testing.T) {
			c := testcluster.Start(t, testcluster.DemoNodes()[:3], snapshotOften, func(cfg *server.Config) {
				cfg.ReconcileInterval = 200 * time.Millisecond
			})
			ctx := ctxT(t)
			cl := c.Client(t)
			ks, err := cl.CreateKeyspace(ctx, "users", 1, eea)
			if err != nil {
				t.Fatal(err)
			}
			shard := ks.Shards[0].ID
			putKeys(ctx, t, cl, "users", 100, 64)
			victim := c.Node("no-1")
			snapDir := filepath.Join(victim.DataDir, "snapshots", fmt.Sprint(shard))
			if what == "snapshot" {
				c.WaitFor(30*time.Second, "a snapshot of the shard on no-1", func() bool {
					m, _ := filepath.Glob(filepath.Join(snapDir, "snapshots", "*", "state.bin"))
					return len(m) > 0
				})
			}
			c.StopNode("no-1")
			switch what {
			case "applied record":
				withStore(t, victim, func(db *pebble.DB) {
					k := append(raftfsm.ShardPrefix(shard), 'a')
					v, closer, err := db.Get(k)
					if err != nil {
						t.Fatal(err)
					}
					bad := bytes.Clone(v)
					closer.Close()
					bad[3] ^= 0x10
					if err := db.Set(k, bad, pebble.Sync); err != nil {
						t.Fatal(err)
					}
				})
			case "snapshot":
				m, _ := filepath.Glob(filepath.Join(snapDir, "snapshots", "*", "state.bin"))
				for _, state := range m { // every snapshot kept, the newest included
					b, err := os.ReadFile(state)
					if err != nil {
						t.Fatal(err)
					}
					b[len(b)/2] ^= 0x01
					if err := os.WriteFile(state, b, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			c.StartNode("no-1")
			c.WaitReady("no-1")

			// The damaged replica is removed and then added back.
			c.WaitFor(60*time.Second, "no-1's replica removed and added back", func() bool {
				ev, err := cl.PlacementHistory(ctx, "users", 100)
				if err != nil {
					return false
				}
				removed, added := false, false
				for i := len(ev) - 1; i >= 0; i-- { // oldest first
					e := ev[i]
					if e.ShardID == shard && e.Node == "no-1" {
						removed = removed || e.Action == "remove-replica"
						added = added || (removed && e.Action == "add-replica")
					}
				}
				return removed && added
			})
			waitIdentical(ctx, t, c, cl, 100)
			// And the rebuilt replica serves.
			dc := c.DirectClient(t, "no-1")
			if _, err := dc.Get(ctx, "users", []byte("user/0042"), client.Follower(time.Second)); err != nil {
				t.Fatalf("follower read on the rebuilt replica: %v", err)
			}
		})
	}
}

// Damage Pebble itself finds (a data file's block checksum, or a
// write-ahead log damaged before its synced end) lies in files every shard
// shares: the node refuses to start, with an error that says so.
func TestDamagedStoreRefusesToStart(t *testing.T) {
	c := testcluster.Start(t, testcluster.DemoNodes()[:3])
	ctx := ctxT(t)
	cl := c.Client(t)
	if _, err := cl.CreateKeyspace(ctx, "users", 1, eea); err != nil {
		t.Fatal(err)
	}
	values := putKeys(ctx, t, cl, "users", 200, 256)

	t.Run("data-file", func(t *testing.T) {
		n := c.Node("no-1")
		c.StopNode("no-1")
		withStore(t, n, func(*pebble.DB) {}) // opening flushes the memtable into an sstable
		tables, _ := filepath.Glob(filepath.Join(n.DataDir, "pebble", "*.sst"))
		if !flipIn(t, tables, values["user/0100"][:64]) {
			t.Fatal("value not found in any sstable")
		}
		_, err := server.New(n.Config)
		if err == nil || !pebble.IsCorruptionError(err) || !strings.Contains(err.Error(), "Damaged data") {
			t.Fatalf("start on a damaged data file: %v", err)
		}
	})
	t.Run("write-ahead-log", func(t *testing.T) {
		n := c.Node("ie-2")
		more := putKeys(ctx, t, cl, "users", 100, 256)
		c.StopNode("ie-2")
		logs, _ := filepath.Glob(filepath.Join(n.DataDir, "pebble", "*.log"))
		if !flipIn(t, logs, more["user/0030"][:64]) {
			t.Fatal("value not found in any WAL")
		}
		_, err := server.New(n.Config)
		var wd *raftfsm.WALDamageError
		if !errors.As(err, &wd) || !strings.Contains(err.Error(), "Damaged data") {
			t.Fatalf("start on a damaged WAL: %v", err)
		}
	})
}

// flipIn flips one bit inside the first occurrence of needle in files.
func flipIn(t *testing.T, files []string, needle []byte) bool {
	t.Helper()
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(b, needle); i >= 0 {
			b[i+len(needle)/2] ^= 0x01
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			return true
		}
	}
	return false
}
