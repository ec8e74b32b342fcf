//go:build unix

package external

import (
	"errors"
	"os/exec"
	"syscall"
)

// killProcessGroupOnCancel runs the agent in a process group of its own and,
// when the context ends, kills the whole group: children an agent started
// (including backgrounded ones that would outlive it) die with it instead of
// lingering after the timeout.
func killProcessGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The group id is the agent's pid, because of Setpgid.
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return nil // the whole group already exited
		}
		return err
	}
}
