// Package buildinfo reports what the running mco binary was built from: the
// module version, the VCS revision and time, and the Go version, all read
// from the build information the Go toolchain embeds. Nothing is hard-coded,
// so a package, a `go install` and a developer's `go build` each report what
// they really are.
package buildinfo

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Info is the build information of one binary.
type Info struct {
	Version   string `json:"version"`            // module version: a tag, a pseudo-version or (devel)
	Revision  string `json:"revision,omitempty"` // VCS commit the binary was built from
	Time      string `json:"time,omitempty"`     // commit time, RFC 3339
	Modified  bool   `json:"modified,omitempty"` // the work tree had uncommitted changes
	GoVersion string `json:"go"`                 // toolchain that built it
}

// Read returns the build information of the running binary.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		// Only binaries built without module support lack it.
		return Info{Version: "(unknown)", GoVersion: "unknown"}
	}
	return fromBuildInfo(bi)
}

func fromBuildInfo(bi *debug.BuildInfo) Info {
	info := Info{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	if info.Version == "" {
		info.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// Short is the version reported to other programs (registration, rpcutil):
// the module version, and for a (devel) build the short revision, which is
// what tells two development builds apart.
func (i Info) Short() string {
	v := i.Version
	if v == "(devel)" && i.Revision != "" {
		v += "+" + shortRev(i.Revision)
		if i.Modified {
			v += ".dirty"
		}
	}
	return v
}

// String is the one-line form printed by `mco --version`.
func (i Info) String() string {
	var parts []string
	if i.Revision != "" {
		rev := shortRev(i.Revision)
		if i.Modified {
			rev += " (modified)"
		}
		parts = append(parts, "revision "+rev)
	}
	if i.Time != "" {
		parts = append(parts, "built from a commit of "+i.Time)
	}
	parts = append(parts, i.GoVersion)
	return fmt.Sprintf("%s (%s)", i.Version, strings.Join(parts, ", "))
}

func shortRev(r string) string {
	if len(r) > 12 {
		return r[:12]
	}
	return r
}
