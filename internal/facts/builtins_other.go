//go:build !linux

package facts

import (
	"log/slog"
	"runtime"
)

// addPlatformFacts only names the kernel off Linux; the richer facts are
// Linux-first and come from command sources such as facter
// elsewhere.
func addPlatformFacts(f map[string]any, _ *slog.Logger) {
	switch runtime.GOOS {
	case "darwin":
		f["kernel"] = "Darwin"
	case "freebsd":
		f["kernel"] = "FreeBSD"
	case "openbsd":
		f["kernel"] = "OpenBSD"
	case "netbsd":
		f["kernel"] = "NetBSD"
	default:
		f["kernel"] = runtime.GOOS
	}
}
