//go:build !unix

package procgroup

import "os/exec"

// KillOnCancel keeps exec's default where process groups do not exist: only
// the command itself is killed when its context ends.
func KillOnCancel(*exec.Cmd) {}
