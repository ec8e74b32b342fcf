//go:build !unix

package discovery

import "os/exec"

// setProcessGroup does nothing where process groups do not exist: the
// program itself is still killed at the timeout.
func setProcessGroup(*exec.Cmd) {}
