package packageagent

import (
	"errors"
	"os/exec"
	"testing"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/protocol"
)

// realAgent is the agent over this machine's dpkg database. Only read-only
// actions (status, count, md5) are ever called on it.
func realAgent(t *testing.T) *agent.Agent {
	t.Helper()
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("dpkg-query is not installed: the real-database tests need a Debian-family machine")
	}
	be, err := DetectBackend("", nil)
	if err != nil {
		t.Skipf("no usable package backend: %v", err)
	}
	return newTestAgent(t, be)
}

func TestRealStatus(t *testing.T) {
	a := realAgent(t)
	rep := call(t, a, "status", map[string]any{"package": "bash"})
	if rep.Status != protocol.OK {
		t.Fatalf("status bash: %d %s", rep.Status, rep.Message)
	}
	ensure, _ := rep.Data["ensure"].(string)
	if ensure == "" || ensure == Absent || ensure == Purged || rep.Data["name"] != "bash" ||
		rep.Data["provider"] != "dpkg" || rep.Data["arch"] == nil || rep.Data["version"] == nil {
		t.Errorf("status bash: %v", rep.Data)
	}

	rep = call(t, a, "status", map[string]any{"package": "marionette-surely-absent-package"})
	if rep.Status != protocol.OK || rep.Data["ensure"] != Purged {
		t.Errorf("status of an absent package: %d %s %v", rep.Status, rep.Message, rep.Data)
	}
}

func TestRealCountAndMD5(t *testing.T) {
	a := realAgent(t)
	rep := call(t, a, "count", nil)
	if n, _ := rep.Data["output"].(int); rep.Status != protocol.OK || n <= 0 {
		t.Errorf("count: %d %s %v", rep.Status, rep.Message, rep.Data)
	}
	first := call(t, a, "md5", nil).Data["output"]
	second := call(t, a, "md5", nil).Data["output"]
	if s, _ := first.(string); len(s) != 32 || first != second {
		t.Errorf("md5 not stable: %v then %v", first, second)
	}
}

func TestDetectNoBackend(t *testing.T) {
	if _, err := DetectBackend(t.TempDir(), nil); !errors.Is(err, ErrNoBackend) {
		t.Errorf("DetectBackend on an empty PATH: %v, want ErrNoBackend", err)
	}
}
