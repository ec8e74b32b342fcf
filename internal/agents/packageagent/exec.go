package packageagent

import (
	"fmt"
	"strings"

	"github.com/marionette/mco/internal/agents/command"
)

// maxOutput bounds the command output put in a reply: apt and dnf can be
// chatty, and a reply has to fit in one broker message.
const maxOutput = 32 << 10

// Result is what a package manager command printed and how it exited.
type Result = command.Result

// tail keeps the last maxOutput bytes of s, where the errors usually are.
func tail(s string) string {
	if len(s) <= maxOutput {
		return s
	}
	return "...(truncated)\n" + s[len(s)-maxOutput:]
}

// commandError describes a command that exited non-zero.
func commandError(what string, res Result) error {
	msg := strings.TrimSpace(res.Output)
	if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
		msg = strings.TrimSpace(msg[i+1:]) // the last line is where apt and dnf say why
	}
	return fmt.Errorf("%s failed with exit code %d: %s", what, res.ExitCode, msg)
}
