package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clover-kv/clover/client"
)

// A full disk: with the nodes' file system below their free-space reserve,
// writes fail with ErrDiskFull and a message that says why, reads go on,
// a refused write is not applied, and once space is freed writes resume
// with every replica intact. Reads of an audited keyspace fail closed
// meanwhile (their audit entries cannot be committed) with Unavailable
// naming the audit, while the unaudited keyspace is served. The three nodes' data directories share one
// size-limited tmpfs (mounting it needs root).
func TestDiskFull(t *testing.T) {
	needBinaries(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a size-limited tmpfs")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=192m", "clover-diskfull", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	c := newCluster(t, demoNodes()[:3])
	// Cleanups run last-in first-out: this one runs before the nodes' own,
	// so it kills the processes before it unmounts their file system.
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.kill()
		}
		_ = exec.Command("umount", "-l", mnt).Run()
	})
	const reserveMiB = 32
	for _, n := range c.nodes {
		n.dataDir = filepath.Join(mnt, n.spec.ID)
		n.extra = []string{fmt.Sprintf("--min-free-disk-mb=%d", reserveMiB)}
	}
	for _, n := range c.nodes {
		n.start()
	}
	c.waitLive(t, c.ids()...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cl := c.client(t)
	unaudited := eea
	unaudited.Audit = "none"
	if _, err := cl.CreateKeyspace(ctx, "users", usersShards, unaudited); err != nil {
		t.Fatalf("create keyspace: %v", err)
	}
	if _, err := cl.CreateKeyspace(ctx, "audited", 2, eea); err != nil {
		t.Fatalf("create keyspace: %v", err)
	}
	c.waitKeyspaceKnown(t, "users", c.ids()...)
	c.waitKeyspaceKnown(t, "audited", c.ids()...)
	if _, err := cl.Put(ctx, "audited", []byte("rec"), []byte("v")); err != nil {
		t.Fatalf("put audited: %v", err)
	}
	acked := map[string]string{}
	put := func(k, v string) error {
		_, err := cl.Put(ctx, "users", []byte(k), []byte(v))
		if err == nil {
			acked[k] = v
		}
		return err
	}
	for i := range 100 {
		if err := put(fmt.Sprintf("before-%03d", i), randomHex(t)); err != nil {
			t.Fatalf("put before the disk fills: %v", err)
		}
	}

	// Fill the file system to half the reserve.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	size := int64(st.Bavail)*int64(st.Bsize) - reserveMiB<<20/2
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		t.Fatalf("fill the disk: %v", err)
	}
	f.Close()

	// The nodes notice within a poll; until then writes may still land.
	var refused error
	for i := 0; refused == nil; i++ {
		err := put(fmt.Sprintf("filling-%03d", i), randomHex(t))
		switch {
		case errors.Is(err, client.ErrDiskFull):
			refused = err
		case err != nil:
			t.Fatalf("write while the disk fills: %v (want success or ErrDiskFull)", err)
		case ctx.Err() != nil:
			t.Fatal("writes never refused on a full disk")
		}
	}
	if msg := refused.Error(); !strings.Contains(msg, "reserve") || !strings.Contains(msg, "MiB free") {
		t.Fatalf("disk-full error does not say why: %v", refused)
	}
	t.Logf("refused: %v", refused)
	// Every node notices within a poll: a write meets one that has.
	refusedKey := ""
	for i := 0; refusedKey == ""; i++ {
		k := fmt.Sprintf("refused-%03d", i)
		err := put(k, "x")
		switch {
		case errors.Is(err, client.ErrDiskFull):
			refusedKey = k
		case err != nil:
			t.Fatalf("write on a full disk: %v (want ErrDiskFull)", err)
		case ctx.Err() != nil:
			t.Fatal("writes never refused on a full disk")
		}
	}

	// Reads go on, linearizable and from followers.
	checkAllReadable(ctx, t, cl, acked)
	if _, err := cl.Get(ctx, "users", []byte("before-042"), client.Follower(time.Second)); err != nil {
		t.Fatalf("follower read on a full disk: %v", err)
	}
	// The audited keyspace fails closed: no read without its record.
	var ae *client.Error
	if _, err := cl.Get(ctx, "audited", []byte("rec")); !errors.Is(err, client.ErrUnavailable) || !errors.As(err, &ae) || ae.Rule != "audit" {
		t.Fatalf("read of an audited keyspace on a full disk: %v (want Unavailable, rule audit)", err)
	} else if !strings.Contains(err.Error(), "audit") {
		t.Fatalf("audit failure does not say so: %v", err)
	}
	cs, err := cl.ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	alarms := 0
	for _, n := range cs.Nodes {
		if n.AuditDiskFull {
			alarms++
		}
	}
	if alarms == 0 {
		t.Fatalf("no node reports the audit's full disk: %+v", cs.Nodes)
	}

	// Space freed: writes resume.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// Each node notices within a poll; a write may meet one that has not.
	for i := range 100 {
		for {
			err := put(fmt.Sprintf("after-%03d", i), randomHex(t))
			if err == nil {
				break
			}
			if !errors.Is(err, client.ErrDiskFull) || ctx.Err() != nil {
				t.Fatalf("write after space was freed: %v", err)
			}
		}
	}
	if _, err := cl.Get(ctx, "users", []byte(refusedKey)); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("a write refused for a full disk was applied: %v", err)
	}
	checkAllReadable(ctx, t, cl, acked)
	if _, err := cl.Get(ctx, "audited", []byte("rec")); err != nil {
		t.Fatalf("read of the audited keyspace once space was freed: %v", err)
	}
	rep, err := cl.CheckReplicas(ctx, "users", time.Minute)
	if err != nil || !rep.OK {
		t.Fatalf("replicas after the disk filled: %+v, %v", rep, err)
	}
	t.Logf("disk full: %d writes acknowledged and read back, replicas of %d shards identical", len(acked), len(rep.Shards))
}
