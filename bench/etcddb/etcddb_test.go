package etcddb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/clover-kv/clover/bench"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startEtcd runs a one-member etcd on loopback for the test, if the etcd
// binary is installed.
func startEtcd(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd is not installed")
	}
	client, peer := freePort(t), freePort(t)
	cu, pu := fmt.Sprintf("http://127.0.0.1:%d", client), fmt.Sprintf("http://127.0.0.1:%d", peer)
	cmd := exec.Command(bin, "--name", "t", "--data-dir", t.TempDir(),
		"--listen-client-urls", cu, "--advertise-client-urls", cu,
		"--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu, "--initial-cluster", "t="+pu)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return fmt.Sprintf("127.0.0.1:%d", client)
}

func TestDriverAgainstEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd")
	}
	ep := startEtcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var db *DB
	var err error
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for db == nil { // until etcd answers
		if db, _, err = Open(ctx, Config{Endpoints: []string{ep}, DialTimeout: time.Second}); err != nil {
			select {
			case <-ctx.Done():
				t.Fatalf("etcd did not come up: %v", err)
			case <-poll.C:
			}
		}
	}
	defer db.Close()
	if err := db.Put(ctx, []byte("k1"), []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := db.Put(ctx, []byte("k2"), []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if err := db.Read(ctx, []byte("k1")); err != nil {
		t.Fatal(err)
	}
	if err := db.Read(ctx, []byte("nope")); !errors.Is(err, bench.ErrNotFound) {
		t.Fatalf("read of a missing key: %v, want ErrNotFound", err)
	}
	// Keys live under the keyspace prefix; scans stay inside it.
	other, _, err := Open(ctx, Config{Endpoints: []string{ep}, Keyspace: "other", Read: ReadSerializable})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Read(ctx, []byte("k1")); !errors.Is(err, bench.ErrNotFound) {
		t.Fatalf("keyspace other sees bench's key: %v", err)
	}
	if err := other.Put(ctx, []byte("k3"), []byte("v3")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		start string
		limit int
		want  int
	}{{"k", 10, 2}, {"k2", 10, 1}, {"k", 1, 1}} {
		if n, err := db.Scan(ctx, []byte(tc.start), tc.limit); err != nil || n != tc.want {
			t.Errorf("scan from %q limit %d: %d, %v; want %d", tc.start, tc.limit, n, err, tc.want)
		}
	}
}

func TestOpenChecksConfig(t *testing.T) {
	ctx := context.Background()
	if _, _, err := Open(ctx, Config{}); err == nil {
		t.Error("Open without endpoints succeeded")
	}
	if _, _, err := Open(ctx, Config{Endpoints: []string{"127.0.0.1:1"}, Read: "follower"}); err == nil {
		t.Error("Open accepted read mode follower")
	}
}
