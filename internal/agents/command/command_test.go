package command

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/marionette/mco/internal/poll"
)

func script(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	script(t, dir, "tool", "echo out; echo err >&2; echo \"lc=$LC_ALL x=$X\"; exit 3\n")
	r := Runner{Path: dir + string(os.PathListSeparator) + os.Getenv("PATH")}
	res, err := r.Run(context.Background(), []string{"X=1"}, "tool", "arg")
	if err != nil {
		t.Fatalf("a non-zero exit is not an error: %v", err)
	}
	if res.ExitCode != 3 || !strings.Contains(res.Output, "err") || strings.Contains(res.Stdout, "err") || !strings.Contains(res.Stdout, "lc=C x=1") {
		t.Fatalf("result = %+v", res)
	}
}

func TestRunNotFound(t *testing.T) {
	_, err := Runner{Path: t.TempDir()}.Run(context.Background(), nil, "apt-get")
	if !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("err = %v, want not found", err)
	}
}

// TestRunTimeoutKillsGroup: the expired context stops the command and the
// child it forked, which would otherwise outlive it holding the pipe.
func TestRunTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	script(t, dir, "slow", "sleep 60 &\necho $! > "+pidFile+"\nwait\n")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := Runner{Path: dir + string(os.PathListSeparator) + os.Getenv("PATH")}.Run(ctx, nil, "slow")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	// Gone, or a zombie nobody reaps here (PID 1 in a container may not).
	poll.Until(t, fmt.Sprintf("child %d to be gone after the timeout", pid), func() bool {
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) || isZombie(pid)
	})
}

func isZombie(pid int) bool {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	f := strings.Fields(string(data))
	return len(f) > 2 && f[2] == "Z"
}
