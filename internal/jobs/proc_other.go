//go:build unix && !linux

package jobs

import "syscall"

// procStart is unknown off Linux: PID reuse is not detected there.
func procStart(int) uint64 { return 0 }

// alive reports whether pid exists.
func alive(pid int, _ uint64) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
