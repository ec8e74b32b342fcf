//go:build !linux

package data

import (
	"io/fs"
	"time"
)

// statInfo holds the fields fs.FileInfo does not expose portably.
type statInfo struct {
	uid, gid     int64
	ctime, atime time.Time
	ino          uint64 // 0 when unknown
}

// statOf falls back to mtime and unknown (-1) owners where the platform's
// stat layout is not wired up.
func statOf(fi fs.FileInfo) statInfo {
	return statInfo{uid: -1, gid: -1, ctime: fi.ModTime(), atime: fi.ModTime()}
}
