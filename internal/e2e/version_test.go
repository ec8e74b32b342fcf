package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/marionette/mco/client"
	"github.com/marionette/mco/internal/buildinfo"
)

// TestVersionFromBuildInfo: mco --version, mco version and the daemon's
// rpcutil inventory all report the build information the toolchain recorded
// in the binary (go version -m), not a number written in the source.
func TestVersionFromBuildInfo(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "version", "-m", mcoBin).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	var modVersion, goVersion string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.HasSuffix(f[0], ":") {
			goVersion = f[1]
		}
		if len(f) >= 3 && f[0] == "mod" && f[1] == "github.com/marionette/mco" {
			modVersion = f[2]
		}
	}
	if modVersion == "" || goVersion == "" {
		t.Fatalf("cannot read the module and Go versions from:\n%s", out)
	}

	r := mco(t, "", "version", "--json")
	var info buildinfo.Info
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &info) != nil {
		t.Fatalf("mco version --json: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if info.Version != modVersion || info.GoVersion != goVersion {
		t.Errorf("mco version --json = %+v, go version -m says %s built by %s", info, modVersion, goVersion)
	}
	r = mco(t, "", "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "mco "+modVersion+" (") || !strings.Contains(r.stdout, goVersion) {
		t.Errorf("mco --version = %q, want the module version %s and %s", r.stdout, modVersion, goVersion)
	}
	r = mco(t, "", "version")
	if r.code != 0 || !strings.Contains(r.stdout, "mco "+modVersion+"\n") || !strings.Contains(r.stdout, "go: "+goVersion) {
		t.Errorf("mco version = %q", r.stdout)
	}

	c := newCollective(t, collectiveOptions{})
	c.startDaemon("node1.e2e")
	cl := c.connect(c.clientConf())
	var reported any
	_, err = cl.Call(context.Background(), client.Request{Agent: "rpcutil", Action: "inventory", Targets: []string{"node1.e2e"}, Timeout: 5 * time.Second},
		func(res client.Result) { reported = res.Data["version"] })
	if err != nil {
		t.Fatal(err)
	}
	if reported != info.Short() {
		t.Errorf("rpcutil inventory reports version %v, want %q", reported, info.Short())
	}
}
