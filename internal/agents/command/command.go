// Package command runs system tools for agents (dpkg, apt, rpm, systemctl,
// service, ...): with an argv, never through a shell; with a fixed PATH and a
// C locale so their output parses the same everywhere; and with the whole
// process group killed when the action's context ends, because package
// managers and init scripts fork children that would otherwise outlive it.
package command

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
	"time"

	"github.com/marionette/mco/internal/procgroup"
)

// Result is what a command printed and how it exited.
type Result struct {
	Output   string // stdout and stderr interleaved, for people to read
	Stdout   string // stdout alone, for parsers: tools warn on stderr
	ExitCode int
}

// Runner runs commands found on its PATH.
type Runner struct {
	Path string       // PATH to find and run commands with; "" means the process's PATH
	Log  *slog.Logger // receives a debug line per command; nil discards
}

// LookPath finds a command on the runner's PATH.
func (r Runner) LookPath(name string) (string, error) {
	if r.Path == "" {
		return exec.LookPath(name)
	}
	for _, dir := range filepath.SplitList(r.Path) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

// Run executes name with args and extra environment entries. A non-zero exit
// is not an error: callers decide what an exit code means (yum check-update
// exits 100 with updates, LSB status 3 means stopped). The error is set when
// the command cannot start or ctx ends; then the process group is killed.
func (r Runner) Run(ctx context.Context, env []string, name string, args ...string) (Result, error) {
	exe, err := r.LookPath(name)
	if err != nil {
		return Result{}, err
	}
	var out syncBuffer
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stdout = io.MultiWriter(&out, &stdout)
	cmd.Stderr = &out
	cmd.Env = r.environ(env)
	procgroup.KillOnCancel(cmd)
	// A daemon started by the command may hold the output pipe forever.
	cmd.WaitDelay = 5 * time.Second

	if r.Log != nil {
		r.Log.Debug("running command", "command", exe, "args", args)
	}
	err = cmd.Run()
	res := Result{Output: out.String(), Stdout: stdout.String(), ExitCode: cmd.ProcessState.ExitCode()}
	if ctx.Err() != nil {
		return res, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), ctx.Err())
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return res, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return res, nil
}

// environ is the process environment with the runner's PATH, a C locale and
// the extra entries.
func (r Runner) environ(extra []string) []string {
	env := make([]string, 0, len(os.Environ())+len(extra)+2)
	for _, kv := range os.Environ() {
		if r.Path != "" && strings.HasPrefix(kv, "PATH=") {
			continue
		}
		env = append(env, kv)
	}
	if r.Path != "" {
		env = append(env, "PATH="+r.Path)
	}
	env = append(env, "LC_ALL=C")
	return append(env, extra...)
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
