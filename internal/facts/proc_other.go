//go:build !unix

package facts

import "os/exec"

// killProcessGroup relies on exec.CommandContext's default kill where
// process groups are not available.
func killProcessGroup(*exec.Cmd) {}
