package packageagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxOutput bounds the command output put in a reply: apt and dnf can be
// chatty, and a reply has to fit in one broker message.
const maxOutput = 32 << 10

// Result is what a package manager command printed and how it exited.
type Result struct {
	Output   string // stdout and stderr interleaved, for people to read
	ExitCode int
	stdout   string // stdout alone, for parsers: warnings go to stderr
}

// runner executes package manager commands with an argv (never a shell) and
// a fixed environment.
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

// run executes name with args. A non-zero exit is not an error: callers
// decide what an exit code means (yum check-update exits 100 on success).
// The error is set when the command cannot start or ctx expires, in which
// case the whole process group is killed so apt's dpkg children die too.
func (r runner) run(ctx context.Context, env []string, name string, args ...string) (Result, error) {
	exe, err := r.lookPath(name)
	if err != nil {
		return Result{}, err
	}
	var out syncBuffer
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stdout = io.MultiWriter(&out, &stdout)
	cmd.Stderr = &out
	cmd.Env = r.environ(env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A grandchild holding the output pipe must not keep Wait blocked forever.
	cmd.WaitDelay = 5 * time.Second

	r.log.Debug("running package command", "command", exe, "args", args)
	err = cmd.Run()
	res := Result{Output: out.String(), ExitCode: cmd.ProcessState.ExitCode(), stdout: stdout.String()}
	if ctx.Err() != nil {
		return res, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), ctx.Err())
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return res, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return res, nil
}

// syncBuffer collects stdout and stderr together: exec copies each from its
// own goroutine, so writes must not interleave.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// environ is the process environment with the runner's PATH and a C locale,
// so that the output the parsers read is not translated.
func (r runner) environ(extra []string) []string {
	env := make([]string, 0, len(os.Environ())+len(extra)+2)
	for _, kv := range os.Environ() {
		if r.path != "" && strings.HasPrefix(kv, "PATH=") {
			continue
		}
		env = append(env, kv)
	}
	if r.path != "" {
		env = append(env, "PATH="+r.path)
	}
	env = append(env, "LC_ALL=C")
	return append(env, extra...)
}

// tail keeps the last maxOutput bytes of s, where the errors usually are.
func tail(s string) string {
	if len(s) <= maxOutput {
		return s
	}
	return "...(truncated)\n" + s[len(s)-maxOutput:]
}

// commandError describes a command that exited non-zero.
func commandError(what string, res Result) error {
	msg := strings.TrimSpace(res.Output)
	if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
		msg = strings.TrimSpace(msg[i+1:]) // the last line is where apt and dnf say why
	}
	return fmt.Errorf("%s failed with exit code %d: %s", what, res.ExitCode, msg)
}
