//go:build unix

package facts

import (
	"os/exec"
	"syscall"
)

// killProcessGroup makes the command lead its own process group and kills
// the whole group on timeout, so helpers that facter or ohai spawn do not
// outlive it.
func killProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
