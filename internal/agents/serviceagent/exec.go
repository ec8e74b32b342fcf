package serviceagent

import (
	"strings"
)

// lastLine is the part of a tool's output that usually says what went wrong.
func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[i+1:])
	}
	return s
}
