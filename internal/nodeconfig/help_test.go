package nodeconfig_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/clover-kv/clover/internal/nodeconfig"
)

// cloverd --help names each flag's unit and shows its default, and the
// default it shows is the one a node runs with: giving it explicitly
// changes nothing.
func TestHelpShowsUnitsAndDefaults(t *testing.T) {
	var base []string
	for k, v := range required {
		base = append(base, "--"+k+"="+v)
	}
	want, wantOpts, err := nodeconfig.Load(base, env{}.lookup)
	if err != nil {
		t.Fatal(err)
	}
	defaults := 0
	nodeconfig.FlagSet().VisitAll(func(f *pflag.Flag) {
		if f.Value.Type() == "string" || f.Value.Type() == "stringSlice" || f.Value.Type() == "stringArray" {
			t.Errorf("--%s is typed %s in --help: want its unit", f.Name, f.Value.Type())
		}
		if f.DefValue == "" || f.DefValue == "false" {
			return
		}
		defaults++
		cfg, opts, err := nodeconfig.Load(append(base, "--"+f.Name+"="+f.DefValue), env{}.lookup)
		if err != nil {
			t.Errorf("--%s=%s (its default in --help): %v", f.Name, f.DefValue, err)
			return
		}
		if !reflect.DeepEqual(cfg, want) || !reflect.DeepEqual(opts, wantOpts) {
			t.Errorf("--%s=%s (its default in --help) changes the config", f.Name, f.DefValue)
		}
	})
	if defaults < 18 {
		t.Errorf("%d flags show a default, want every setting that has one", defaults)
	}
	usage := nodeconfig.FlagSet().FlagUsages()
	for _, line := range []string{
		"--listen-grpc host:port", "(default 127.0.0.1:7400)",
		"--raft-heartbeat-timeout duration", "Raft heartbeat timeout (default 1s)",
		"--min-free-disk-mb MiB", "(0 = no check) (default 64)",
		"--raft-snapshot-threshold entries", "snapshots (default 16384)",
		"--meta-voters nodes", "--log-level level", "(default info)",
		"--join host:port,...", "--jurisdiction NAME=CC,...", "--personal-data-jurisdiction jurisdiction", "--version",
	} {
		if !strings.Contains(usage, line) {
			t.Errorf("cloverd --help does not show %q:\n%s", line, usage)
		}
	}
}

// --version needs no other setting.
func TestVersionFlag(t *testing.T) {
	_, opts, err := nodeconfig.Load([]string{"--version"}, env{"CLOVER_META_VOTERS": "three"}.lookup)
	if err != nil || !opts.Version {
		t.Errorf("Load(--version): version %v, err %v", opts.Version, err)
	}
}
