package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFrom(t *testing.T) {
	cases := []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"checkout with changes", debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "3917ba3c2d1e"}, {Key: "vcs.modified", Value: "true"}}},
			"devel (commit 3917ba3c2d1e, modified, go1.26.0)"},
		{"clean checkout", debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "3917ba3c2d1e"}, {Key: "vcs.modified", Value: "false"}}},
			"devel (commit 3917ba3c2d1e, go1.26.0)"},
		{"tagged module", debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Version: "v1.2.0"}},
			"v1.2.0 (commit unknown, go1.26.1)"},
	}
	for _, tc := range cases {
		if got := From(&tc.bi).String(); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// A test binary carries build information too: its Go version at least.
func TestRead(t *testing.T) {
	if i := Read(); i.GoVersion == "" || i.Version == "" {
		t.Errorf("Read() = %+v, want a version and a Go version", i)
	}
}

// A commit given at link time fills in for VCS information the go command
// did not stamp, and never overrides it.
func TestOrLinked(t *testing.T) {
	stamped := Info{Version: "devel", Revision: "aaaa", GoVersion: "go1.26.0"}
	if got := stamped.orLinked("bbbb", "true"); got != stamped {
		t.Errorf("stamped build: %+v", got)
	}
	bare := Info{Version: "devel", GoVersion: "go1.26.0"}
	if got := bare.orLinked("bbbb", "true").String(); got != "devel (commit bbbb, modified, go1.26.0)" {
		t.Errorf("unstamped build: %q", got)
	}
	if got := bare.orLinked("", ""); got != bare {
		t.Errorf("nothing linked: %+v", got)
	}
}
