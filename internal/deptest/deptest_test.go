// Package deptest keeps the public packages light to embed: agent, ddl,
// filter and protocol, and everything they import, may use the standard
// library and this module's packages, but no third-party module (after
// tailscale's deptest).
package deptest

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/marionette/mco/"

func TestPublicPackagesImportOnlyStdlib(t *testing.T) {
	t.Parallel()
	public := []string{"agent", "ddl", "filter", "protocol"}
	args := []string{"list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}"}
	for _, p := range public {
		args = append(args, module+p)
	}
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	// -deps is transitive: a module package that pulls a third-party one in
	// shows up as that third-party package.
	for _, dep := range strings.Fields(string(out)) {
		if !strings.HasPrefix(dep, module) {
			t.Errorf("a public package depends on %s: agent, ddl, filter and protocol may use only the standard library and this module", dep)
		}
	}
}
