package e2e

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clover-kv/clover/internal/testcerts"
)

// runCloverd runs cloverd to completion and returns its exit code and
// stderr. A process still running after timeout is killed and fails the
// test.
func runCloverd(t *testing.T, timeout time.Duration, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binaries.cloverd, args...)
	cmd.SysProcAttr = procAttr()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("cloverd %v still running after %v; killed. stderr:\n%s", args, timeout, stderr.String())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stderr.String()
	}
	t.Fatalf("run cloverd: %v", err)
	return 0, ""
}

// assertPortsFree fails if anything still listens on the addresses.
func assertPortsFree(t *testing.T, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Errorf("%s still in use after cloverd exited: %v", a, err)
			continue
		}
		ln.Close()
	}
}

// A node refuses to start on a bad configuration: it exits non-zero with a
// message naming the problem and leaves nothing running.
func TestNodeRefusesBadStartup(t *testing.T) {
	needBinaries(t)
	pki := testcerts.NewPKI(t, "e2e-startup")
	yaml := func(dir, body string) string {
		p := filepath.Join(dir, "cloverd.yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name string
		// args builds the arguments from a fresh directory and listen flags.
		args func(dir string, listen []string) []string
		want []string
	}{{
		name: "unknown country code",
		args: func(dir string, listen []string) []string {
			return append([]string{"--node-id", "ie-1", "--locality", "country=XX,region=ie-dublin", "--data-dir", dir, "--bootstrap"}, listen...)
		},
		want: []string{"--locality", `"XX"`, "unknown country code"},
	}, {
		name: "locality element not key=value",
		args: func(dir string, listen []string) []string {
			return append([]string{"--node-id", "ie-1", "--locality", "IE/ie-dublin", "--data-dir", dir, "--bootstrap"}, listen...)
		},
		want: []string{"--locality", "invalid locality", "not key=value"},
	}, {
		name: "locality with an unknown key",
		args: func(dir string, listen []string) []string {
			return append([]string{"--node-id", "ie-1", "--locality", "country=IE,city=dublin", "--data-dir", dir, "--bootstrap"}, listen...)
		},
		want: []string{"--locality", "invalid locality", `unknown key "city"`},
	}, {
		name: "missing data dir",
		args: func(_ string, listen []string) []string {
			return append([]string{"--node-id", "ie-1", "--locality", "country=IE", "--bootstrap"}, listen...)
		},
		want: []string{"data-dir", "required"},
	}, {
		name: "empty data dir without join or bootstrap",
		args: func(dir string, listen []string) []string {
			return append([]string{"--node-id", "ie-1", "--locality", "country=IE", "--data-dir", dir}, listen...)
		},
		want: []string{"no state and nothing to join", "--join", "--bootstrap"},
	}, {
		name: "config file with an unknown key",
		args: func(dir string, listen []string) []string {
			p := yaml(t.TempDir(), "node-id: ie-1\nlocality: country=IE\ndata-dir: "+dir+"\nbootstrap: true\nreplicas: 3\n")
			return append([]string{"--config", p}, listen...)
		},
		want: []string{"config file", `unknown key "replicas"`},
	}, {
		// A node certified in the US that claims Ireland does not start.
		name: "certificate attests another locality",
		args: func(dir string, listen []string) []string {
			f := pki.Node(t, "us-1", "country=US,region=us-east,zone=a")
			return append([]string{"--insecure=false", "--tls-cert", f.Cert, "--tls-key", f.Key, "--tls-ca", f.CA,
				"--locality", "country=IE,region=ie-dublin,zone=a", "--data-dir", dir, "--bootstrap"}, listen...)
		},
		want: []string{"locality country=IE,region=ie-dublin,zone=a is configured", "the certificate attests country=US,region=us-east,zone=a"},
	}, {
		name: "another node's certificate",
		args: func(dir string, listen []string) []string {
			f := pki.Node(t, "us-1", "country=US,region=us-east,zone=a")
			return append([]string{"--insecure=false", "--tls-cert", f.Cert, "--tls-key", f.Key, "--tls-ca", f.CA,
				"--node-id", "ie-3", "--data-dir", dir, "--bootstrap"}, listen...)
		},
		want: []string{`node id "ie-3" is configured, but the certificate attests node "us-1"`},
	}, {
		name: "no certificates and no --insecure",
		args: func(dir string, listen []string) []string {
			return append([]string{"--insecure=false", "--node-id", "ie-1", "--locality", "country=IE", "--data-dir", dir, "--bootstrap"}, listen...)
		},
		want: []string{"no certificates", "--insecure"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ports := freePorts(t, 3)
			listen := []string{"--listen-grpc", ports[0], "--listen-raft", ports[1], "--listen-gossip", ports[2]}
			code, stderr := runCloverd(t, readyTimeout, tc.args(filepath.Join(t.TempDir(), "data"), listen)...)
			if code == 0 {
				t.Fatalf("cloverd exited 0; stderr:\n%s", stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			assertPortsFree(t, ports...)
		})
	}

	t.Run("data dir of another locality", func(t *testing.T) {
		c := newCluster(t, []nodeSpec{{"ie-1", "country=IE,region=ie-dublin,zone=a"}})
		n := c.node("ie-1")
		n.start()
		c.waitLive(t, "ie-1")
		n.stop()

		code, stderr := runCloverd(t, readyTimeout, "--node-id", "ie-1", "--locality", "country=US,region=us-east,zone=a",
			"--data-dir", n.dataDir, "--listen-grpc", n.grpc, "--listen-raft", n.raft, "--listen-gossip", n.gossip)
		if code == 0 {
			t.Fatalf("cloverd exited 0 on a data dir recorded at another locality; stderr:\n%s", stderr)
		}
		for _, w := range []string{"belongs to node", "country=IE,region=ie-dublin,zone=a", "country=US,region=us-east,zone=a", "locality cannot change"} {
			if !strings.Contains(stderr, w) {
				t.Errorf("stderr lacks %q:\n%s", w, stderr)
			}
		}
		assertPortsFree(t, n.grpc, n.raft, n.gossip)

		// The refusal left the data dir as it was: the node restarts on it.
		n.start()
		c.waitLive(t, "ie-1")
		n.stop()
	})
}
