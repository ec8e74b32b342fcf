package facts

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestFlattenOhai(t *testing.T) {
	got := FlattenOhai(map[string]any{
		"cpu":           map[string]any{"total": 2.0, "0": map[string]any{"model_name": "EPYC"}},
		"chef_packages": map[string]any{"chef": map[string]any{"version": "16.13.0"}},
		"hostname":      "web1",
		"empty":         map[string]any{},
		"list":          []any{"a", "b"},
	})
	want := map[string]any{"cpu.total": 2.0, "cpu.0.model_name": "EPYC", "chef_packages.chef.version": "16.13.0",
		"hostname": "web1", "empty": map[string]any{}, "list": []any{"a", "b"}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, v := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("missing %s (want %v)", k, v)
		}
	}
	if v, ok := Lookup(got, "chef_packages.chef.version"); !ok || v != "16.13.0" {
		t.Fatalf("lookup of a flat dotted name: %v %v", v, ok)
	}
}

func TestSourceCommand(t *testing.T) {
	if argv, err := SourceCommand("facter"); err != nil || len(argv) != 3 || argv[2] != "--show-legacy" {
		t.Fatalf("facter: %v %v", argv, err)
	}
	if _, err := SourceCommand("cfengine"); err == nil {
		t.Fatal("unknown source accepted")
	}
}

// needTool fails in CI (which installs facter and ohai) and skips elsewhere.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (CI installs it): %v", name, err)
		}
		t.Skipf("%s is not installed", name)
	}
}

// The real Facter (Debian's facter 4) and Ohai (Debian's ohai 16) through the
// store, as facts.sources = facter, ohai configures a daemon.
func TestRealFacterAndOhai(t *testing.T) {
	needTool(t, "facter")
	needTool(t, "ohai")
	facter, _ := SourceCommand("facter")
	ohai, _ := SourceCommand("ohai")
	// Later sources win for the same name: Ohai's "os" (linux) must not
	// hide Facter's structured os fact, so Ohai comes first.
	s, err := New(Options{Commands: [][]string{ohai, facter}, CommandTimeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"os.family", "operatingsystem", "cpu.total", "chef_packages.ohai.version"} {
		if v, ok := s.Fact(name); !ok || v == nil {
			t.Errorf("fact %s missing", name)
		}
	}
	if v, _ := s.Fact("operatingsystem"); v != "Debian" {
		t.Errorf("legacy fact operatingsystem = %v, want Debian", v)
	}
}
