package serviceagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// result is what an init tool printed and how it exited.
type result struct {
	output   string // stdout and stderr interleaved
	exitCode int
}

// runner executes init tools with an argv, never through a shell.
type runner struct {
	path string // PATH used to find and run commands; "" means the process PATH
	log  *slog.Logger
}

// lookPath finds a command on the runner's PATH.
func (r runner) lookPath(name string) (string, error) {
	if r.path == "" {
		return exec.LookPath(name)
	}
	for _, dir := range filepath.SplitList(r.path) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

// run executes name with args. A non-zero exit is not an error, since exit
// codes carry the service state; the error is set when the command cannot
// start or ctx expires, and then the whole process group is killed because
// init scripts fork daemons that would otherwise hold the output pipe.
func (r runner) run(ctx context.Context, name string, args ...string) (result, error) {
	exe, err := r.lookPath(name)
	if err != nil {
		return result{}, err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	if r.path != "" {
		cmd.Env = append(withoutPath(os.Environ()), "PATH="+r.path)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A daemon started by an init script may keep our stdout open forever.
	cmd.WaitDelay = 5 * time.Second

	r.log.Debug("running service command", "command", exe, "args", args)
	err = cmd.Run()
	res := result{output: strings.TrimSpace(out.String()), exitCode: cmd.ProcessState.ExitCode()}
	if ctx.Err() != nil {
		return res, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), ctx.Err())
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return res, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return res, nil
}

func withoutPath(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PATH=") {
			out = append(out, kv)
		}
	}
	return out
}

// lastLine is the part of a tool's output that usually says what went wrong.
func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[i+1:])
	}
	return s
}
