package facts

import (
	"errors"
	"log/slog"
	"os"
	"strings"
	"syscall"
)

// addPlatformFacts adds what Linux exposes through os-release, uname and
// /proc.
func addPlatformFacts(f map[string]any, log *slog.Logger) {
	f["kernel"] = "Linux"

	data, err := os.ReadFile("/etc/os-release")
	if errors.Is(err, os.ErrNotExist) {
		data, err = os.ReadFile("/usr/lib/os-release")
	}
	if err != nil {
		log.Debug("built-in fact unavailable", "fact", "os", "error", err)
	} else {
		for k, v := range osFacts(parseOSRelease(data), firstLine) {
			f[k] = v
		}
	}

	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		log.Debug("built-in fact unavailable", "fact", "kernelrelease", "error", err)
	} else {
		f["kernelrelease"] = cString(u.Release[:])
		f["hardwaremodel"] = cString(u.Machine[:])
	}

	if data, err := os.ReadFile("/proc/meminfo"); err != nil {
		log.Debug("built-in fact unavailable", "fact", "memory", "error", err)
	} else if total, free, err := parseMeminfo(data); err != nil {
		log.Debug("built-in fact unavailable", "fact", "memory", "error", err)
	} else {
		f["memorysize_mb"] = total
		f["memory"] = map[string]any{"total_mb": total, "free_mb": free}
	}

	if data, err := os.ReadFile("/proc/uptime"); err != nil {
		log.Debug("built-in fact unavailable", "fact", "uptime_seconds", "error", err)
	} else if secs, err := parseUptime(data); err != nil {
		log.Debug("built-in fact unavailable", "fact", "uptime_seconds", "error", err)
	} else {
		f["uptime_seconds"] = secs
	}
}

// cString converts a NUL-terminated utsname field; its element type is int8
// or uint8 depending on the architecture.
func cString[T int8 | uint8](b []T) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}

// firstLine returns a file's first line, trimmed, or "" when it cannot be
// read.
func firstLine(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimSpace(line)
}
