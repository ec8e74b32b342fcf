package packageagent

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

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

// TestRunTimeoutKills uses a fake command that would sleep for a minute: the
// expired context must stop it and say so.
func TestRunTimeoutKills(t *testing.T) {
	dir := t.TempDir()
	script := "#!/bin/sh\nsleep 60 &\nwait\n"
	if err := os.WriteFile(filepath.Join(dir, "slow"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := runner{path: dir + string(os.PathListSeparator) + os.Getenv("PATH"), log: discard()}.run(ctx, nil, "slow")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want deadline exceeded", err)
	}
}

func TestRunNotFound(t *testing.T) {
	_, err := runner{path: t.TempDir(), log: discard()}.run(context.Background(), nil, "apt-get")
	if !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("err = %v, want not found", err)
	}
	if _, err := DetectBackend(t.TempDir(), nil); !errors.Is(err, ErrNoBackend) {
		t.Errorf("DetectBackend on an empty PATH: %v, want ErrNoBackend", err)
	}
}
