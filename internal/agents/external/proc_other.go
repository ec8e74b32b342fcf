//go:build !unix

package external

import "os/exec"

// killProcessGroupOnCancel keeps exec's default of killing only the agent
// process: process groups are a unix notion and external agents are supported
// on unix only; this file merely keeps the module building elsewhere.
func killProcessGroupOnCancel(cmd *exec.Cmd) {}
