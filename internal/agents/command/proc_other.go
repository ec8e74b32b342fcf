//go:build !unix

package command

import "os/exec"

// killGroupOnCancel: without process groups only the command itself is
// killed when its context ends (exec's default).
func killGroupOnCancel(*exec.Cmd) {}
