//go:build unix

package external

import (
	"fmt"
	"os"
	"syscall"
)

// checkTrusted refuses a file that someone other than root or the daemon's
// user could have written: writable by group or others, or owned by another
// user. The node would run (or obey) it with its own rights. Symlinks are
// followed: what counts is the file that runs.
func checkTrusted(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("checking %s: %w", path, err)
	}
	if perm := st.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("refusing %s: writable by group or others (mode %04o); run chmod go-w on it", path, perm)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := int(sys.Uid); uid != 0 && uid != os.Geteuid() {
		return fmt.Errorf("refusing %s: owned by uid %d, not by root or the daemon's user (uid %d)", path, uid, os.Geteuid())
	}
	return nil
}

// ownerOf returns a file's uid, or -1 when the platform does not say.
func ownerOf(st os.FileInfo) int {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return int(sys.Uid)
	}
	return -1
}
