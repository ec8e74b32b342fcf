//go:build linux

package reaper

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

func startGroup(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// TestReapRecordedGroupsOnly: a group recorded by a previous daemon is killed
// at Open; one whose recorded start time does not match (its id reused by
// another process) and one never recorded (a detached job) are left alone.
func TestReapRecordedGroupsOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "running-agents")
	g, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	orphan, reused, detached := startGroup(t), startGroup(t), startGroup(t)
	g.Started(orphan.Process.Pid)
	g.Started(reused.Process.Pid)
	// Make the second record name a process that has since been replaced.
	g.live[reused.Process.Pid]++
	if err := g.save(); err != nil {
		t.Fatal(err)
	}

	if _, err := Open(path, nil); err != nil { // the next daemon
		t.Fatal(err)
	}
	if err := orphan.Wait(); err == nil {
		t.Fatal("the recorded group exited normally; want killed")
	}
	for _, c := range []*exec.Cmd{reused, detached} {
		if err := c.Process.Signal(syscall.Signal(0)); err != nil {
			t.Errorf("pid %d was killed: %v", c.Process.Pid, err)
		}
	}
	data, _ := os.ReadFile(path)
	if len(data) != 0 {
		t.Errorf("record not emptied after reaping: %q", data)
	}

	// Exited forgets a group.
	g2, _ := Open(path, nil)
	g2.Started(detached.Process.Pid)
	g2.Exited(detached.Process.Pid)
	if data, _ := os.ReadFile(path); len(data) != 0 {
		t.Errorf("record after Exited: %q", data)
	}
}
