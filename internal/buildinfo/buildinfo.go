// Package buildinfo says what a Clover binary was built from, for each
// binary's --version:
//
//	fmt.Println("cloverd", buildinfo.Read())
//	// cloverd devel (commit 3917ba3c..., modified, go1.26.0)
//
// It reads runtime/debug.ReadBuildInfo: the main module's version, the VCS
// revision and modified flag the go command stamps into binaries built
// from a checkout, and the Go version. Where the go command stamps no VCS
// information (a git worktree, GOFLAGS=-buildvcs=false), make build gives
// the commit with -ldflags -X instead (see revision).
package buildinfo

import (
	"runtime/debug"
	"strings"
)

// Info is what a binary was built from.
type Info struct {
	// Version is the main module's version: a tag such as v1.2.0 for
	// `go install ...@v1.2.0`, "devel" for a build from a checkout.
	Version string
	// Revision is the VCS commit (vcs.revision), "" when not stamped (a
	// build outside a checkout, or with -buildvcs=false).
	Revision string
	// Modified: the checkout had uncommitted changes (vcs.modified).
	Modified bool
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string
}

// revision and modified are set by make build, with -ldflags "-X
// github.com/clover-kv/clover/internal/buildinfo.revision=...", from git;
// they count only when the go command stamped no vcs.revision.
var revision, modified string

// Read returns the running binary's Info.
func Read() Info {
	info := Info{Version: "devel"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		info = From(bi)
	}
	return info.orLinked(revision, modified)
}

// orLinked fills in the revision and modified flag given at link time when
// the build information has none.
func (i Info) orLinked(rev, mod string) Info {
	if i.Revision == "" && rev != "" {
		i.Revision, i.Modified = rev, mod == "true"
	}
	return i
}

// From extracts Info from build information.
func From(bi *debug.BuildInfo) Info {
	info := Info{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	if info.Version == "" || info.Version == "(devel)" {
		info.Version = "devel"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String is one line: the version, then the commit (or "commit unknown"),
// "modified" when the checkout had uncommitted changes, and the Go version,
// e.g. "devel (commit 3917ba3c..., modified, go1.26.0)".
func (i Info) String() string {
	parts := []string{"commit unknown"}
	if i.Revision != "" {
		parts[0] = "commit " + i.Revision
	}
	if i.Modified {
		parts = append(parts, "modified")
	}
	if i.GoVersion != "" {
		parts = append(parts, i.GoVersion)
	}
	return i.Version + " (" + strings.Join(parts, ", ") + ")"
}
