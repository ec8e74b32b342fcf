package data

import (
	"io/fs"
	"syscall"
	"time"
)

// statInfo holds the fields fs.FileInfo does not expose portably.
type statInfo struct {
	uid, gid     int64
	ctime, atime time.Time
	ino          uint64 // 0 when unknown
}

func statOf(fi fs.FileInfo) statInfo {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return statInfo{uid: -1, gid: -1, ctime: fi.ModTime(), atime: fi.ModTime()}
	}
	return statInfo{
		uid:   int64(st.Uid),
		gid:   int64(st.Gid),
		ctime: time.Unix(int64(st.Ctim.Sec), int64(st.Ctim.Nsec)),
		atime: time.Unix(int64(st.Atim.Sec), int64(st.Atim.Nsec)),
		ino:   uint64(st.Ino),
	}
}
