//go:build !unix

package security

import "os"

// inode is not available here; modification time and size still tell
// versions apart.
func inode(os.FileInfo) uint64 { return 0 }
