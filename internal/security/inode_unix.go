//go:build unix

package security

import (
	"os"
	"syscall"
)

// inode is the file's inode number: a file replaced by rename gets a new one.
func inode(st os.FileInfo) uint64 {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(sys.Ino)
	}
	return 0
}
