// Package pidfile reads the PID and lock files that configuration
// management tools write (Puppet's agent_catalog_run.lock and pidfile,
// chef-client's run lock and pid file) into a live process. A file whose
// process has died is stale and reads as no process: Puppet and Chef leave
// them behind when they are killed.
package pidfile

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Live reads the PID in the file at path and reports it, with the file's
// modification time (when the lock was taken), when that process lives. An
// empty path, a missing or malformed file and a dead process all report
// ok false.
func Live(path string) (pid int, since time.Time, ok bool) {
	if path == "" {
		return 0, time.Time{}, false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, time.Time{}, false
	}
	pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, time.Time{}, false
	}
	// Signal 0 probes without signalling; EPERM means the process exists
	// but belongs to another user (Puppet run as root, mco as a user).
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0, time.Time{}, false
	}
	if fi, err := os.Stat(path); err == nil {
		since = fi.ModTime()
	}
	return pid, since, true
}
