//go:build unix

package jobs

import (
	"os/exec"
	"syscall"
)

// detach gives the job a session of its own: no signal for the daemon's
// process group or terminal reaches it, and it survives the daemon's exit.
func detach(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return nil
}
