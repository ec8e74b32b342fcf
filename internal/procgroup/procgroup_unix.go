//go:build unix

package procgroup

import (
	"errors"
	"os/exec"
	"syscall"
)

// KillOnCancel makes cmd lead a process group of its own and, when its
// context ends, kills the whole group.
func KillOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The group id is the command's pid, because of Setpgid.
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return nil // the whole group already exited
		}
		return err
	}
}
