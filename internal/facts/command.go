package facts

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/marionette/mco/internal/procgroup"
)

// maxCommandOutput bounds what a command source may print, so a runaway
// program cannot exhaust the daemon's memory. facter -j prints ~100 KiB.
const maxCommandOutput = 16 << 20

// runCommand runs argv directly (no shell) and parses its standard output as
// a JSON object. JSON only: read as YAML, a stray line such as
// "facter: command not found" would become a fact.
func runCommand(ctx context.Context, argv []string, timeout time.Duration) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// WaitDelay stops Wait from blocking forever when a killed command left
	// a grandchild holding the output pipes open.
	cmd.WaitDelay = time.Second
	procgroup.KillOnCancel(cmd)
	stdout := &cappedBuffer{limit: maxCommandOutput}
	stderr := &cappedBuffer{limit: 4096, discard: true}
	cmd.Stdout, cmd.Stderr = stdout, stderr

	err := cmd.Run()
	name := strings.Join(argv, " ")
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return nil, fmt.Errorf("command %q: timed out after %s", name, timeout)
	case err != nil && isFacter(argv) && ctx.Err() == nil:
		// Facter exits 1 when any one fact failed to resolve (a sandbox
		// hiding /proc/1/environ is enough) yet prints all the others:
		// its JSON, when it is one, is the facts.
		if m, perr := parseFacts(stdout.buf.Bytes(), formatJSON); perr == nil && len(m) > 0 {
			return m, nil
		}
		if msg := strings.TrimSpace(stderr.buf.String()); msg != "" {
			return nil, fmt.Errorf("command %q: %w: %s", name, err, msg)
		}
		return nil, fmt.Errorf("command %q: %w", name, err)
	case err != nil:
		if msg := strings.TrimSpace(stderr.buf.String()); msg != "" {
			return nil, fmt.Errorf("command %q: %w: %s", name, err, msg)
		}
		return nil, fmt.Errorf("command %q: %w", name, err)
	}
	m, err := parseFacts(stdout.buf.Bytes(), formatJSON)
	if err != nil {
		return nil, fmt.Errorf("command %q output: %w", name, err)
	}
	if isOhai(argv) {
		m = FlattenOhai(m)
	}
	return m, nil
}

// cappedBuffer collects up to limit bytes. Beyond that it either fails the
// write, so that cmd.Run reports the error, or (discard) silently drops the
// rest, which suits stderr kept only for the log message.
type cappedBuffer struct {
	buf     bytes.Buffer
	limit   int
	discard bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	room := c.limit - c.buf.Len()
	if len(p) <= room {
		return c.buf.Write(p)
	}
	if !c.discard {
		return 0, fmt.Errorf("output exceeds %d bytes", c.limit)
	}
	c.buf.Write(p[:max(room, 0)])
	return len(p), nil
}
