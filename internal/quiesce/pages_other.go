//go:build !linux

package quiesce

// ReleaseBinaryPages does nothing outside Linux: the other systems have no
// equivalent of MADV_PAGEOUT for a process's own file mappings that this
// package relies on.
func ReleaseBinaryPages() (int64, error) { return 0, nil }
