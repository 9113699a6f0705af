package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/internal/testcluster"
)

var eea = client.Policy{AllowJurisdictions: []string{"EEA"}, Replicas: 3, Class: "personal"}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func canary(t *testing.T) []byte {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return []byte("canary-" + hex.EncodeToString(b))
}

// A 4-node cluster with one US node places users only on EEA nodes, the US
// node refuses users, and no users byte reaches the US node's disk.
func TestResidencyPlacementAndRefusal(t *testing.T) {
	c := testcluster.Start(t, testcluster.DemoNodes())
	ctx := ctxT(t)
	cl := c.Client(t)

	users, err := cl.CreateKeyspace(ctx, "users", 8, eea)
	if err != nil {
		t.Fatalf("create users: %v", err)
	}
	if _, err := cl.CreateKeyspace(ctx, "videos", 4, client.Policy{Replicas: 3, Class: "public"}); err != nil {
		t.Fatalf("create videos: %v", err)
	}
	for _, sh := range users.Shards {
		if len(sh.Replicas) != 3 {
			t.Fatalf("shard %d has %d replicas, want 3", sh.ID, len(sh.Replicas))
		}
		if slices.Contains(sh.Replicas, "us-1") {
			t.Fatalf("shard %d of users placed on us-1: %v", sh.ID, sh.Replicas)
		}
	}

	secret := canary(t)
	for i := 0; i < 50; i++ {
		key := []byte("user/" + string(rune('a'+i%26)) + hex.EncodeToString([]byte{byte(i)}))
		if _, err := cl.Put(ctx, "users", key, secret); err != nil {
			t.Fatalf("put users: %v", err)
		}
	}
	if _, err := cl.Put(ctx, "videos", []byte("video/1"), []byte("public-cat-video")); err != nil {
		t.Fatalf("put videos: %v", err)
	}

	// The US node refuses users reads and writes with a residency error
	// naming permitted endpoints, and serves videos.
	us := c.DirectClient(t, "us-1")
	_, err = us.Get(ctx, "users", []byte("user/a00"))
	var ce *client.Error
	if !errors.Is(err, client.ErrResidency) || !errors.As(err, &ce) {
		t.Fatalf("US read of users: got %v, want ErrResidency", err)
	}
	if len(ce.PermittedEndpoints) != 3 || slices.Contains(ce.PermittedEndpoints, c.Node("us-1").GRPCAddr()) {
		t.Fatalf("permitted endpoints %v: want the 3 EEA nodes", ce.PermittedEndpoints)
	}
	if _, err := us.Put(ctx, "users", []byte("user/x"), secret); !errors.Is(err, client.ErrResidency) {
		t.Fatalf("US write of users: got %v, want ErrResidency", err)
	}
	if _, _, err := us.Scan(ctx, "users"); !errors.Is(err, client.ErrResidency) {
		t.Fatalf("US scan of users: got %v, want ErrResidency", err)
	}
	kv, err := us.Get(ctx, "videos", []byte("video/1"))
	if err != nil || string(kv.Value) != "public-cat-video" {
		t.Fatalf("US read of videos: %v %q", err, kv.Value)
	}

	// The cluster status shows no users replica on the US node.
	st, err := cl.ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st.Nodes {
		for _, r := range n.Replicas {
			if n.ID == "us-1" && r.Keyspace == "users" {
				t.Fatalf("us-1 holds users shard %d", r.ShardID)
			}
		}
	}

	// Flush every node's memtables so data reaches sstables, then look for
	// the canary in every file of every node.
	if hits := c.FilesContaining("us-1", secret); len(hits) > 0 {
		t.Fatalf("canary found on the US node in %v", hits)
	}
	found := 0
	for _, id := range []string{"ie-1", "ie-2", "no-1"} {
		if len(c.FilesContaining(id, secret)) > 0 {
			found++
		}
	}
	if found == 0 {
		t.Fatal("canary found on no EEA node: the search cannot see data at all")
	}
}

// A policy that cannot be met is refused, and nothing is placed outside.
func TestKeyspaceThatCannotBePlacedIsRefused(t *testing.T) {
	c := testcluster.Start(t, testcluster.DemoNodes())
	ctx := ctxT(t)
	cl := c.Client(t)
	_, err := cl.CreateKeyspace(ctx, "users", 4, client.Policy{AllowJurisdictions: []string{"EEA"}, Replicas: 5, Class: "personal"})
	if !errors.Is(err, client.ErrCannotPlace) {
		t.Fatalf("got %v, want ErrCannotPlace", err)
	}
	list, err := cl.Keyspaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Fatalf("keyspaces after refusal: %+v", list)
	}
	if _, err := cl.CreateKeyspace(ctx, "bad", 4, client.Policy{AllowJurisdictions: []string{"ATLANTIS"}, Replicas: 3, Class: "personal"}); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("unknown jurisdiction: got %v, want ErrInvalidArgument", err)
	}
	if _, err := cl.Get(ctx, "nope", []byte("k")); !errors.Is(err, client.ErrUnknownKeyspace) {
		t.Fatalf("unknown keyspace: got %v", err)
	}
}
