package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/marionette/mco", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"},
			{Key: "vcs.time", Value: "2026-12-02T01:00:00Z"},
			{Key: "vcs.modified", Value: "false"},
		},
	}
	info := fromBuildInfo(bi)
	if info.Version != "v1.2.3" || info.Revision != "0123456789abcdef0123" || info.Time != "2026-12-02T01:00:00Z" || info.Modified || info.GoVersion != "go1.26.8" {
		t.Fatalf("info = %+v", info)
	}
	if got := info.Short(); got != "v1.2.3" {
		t.Errorf("Short = %q", got)
	}
	if got, want := info.String(), "v1.2.3 (revision 0123456789ab, built from a commit of 2026-12-02T01:00:00Z, go1.26.8)"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

func TestDevelBuildNamesItsRevision(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/marionette/mco", Version: "(devel)"},
		Settings:  []debug.BuildSetting{{Key: "vcs.revision", Value: "abcdef0123456789"}, {Key: "vcs.modified", Value: "true"}},
	}
	info := fromBuildInfo(bi)
	if got := info.Short(); got != "(devel)+abcdef012345.dirty" {
		t.Errorf("Short = %q", got)
	}
	if !strings.Contains(info.String(), "(modified)") {
		t.Errorf("String = %q does not say the tree was modified", info.String())
	}
}

func TestReadInTest(t *testing.T) {
	info := Read()
	if info.GoVersion == "" || info.Version == "" {
		t.Fatalf("Read() = %+v: the test binary has build info", info)
	}
}
