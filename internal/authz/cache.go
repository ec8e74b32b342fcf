package authz

import (
	"errors"
	"io/fs"
	"os"
	"time"
)

// fileState is what the last check found at a cached path.
type fileState int

const (
	fileUnchecked fileState = iota
	fileMissing
	fileUnreadable
	fileLoaded
)

// cached holds the parse result of one file and what is needed to notice that
// the file changed, so files are re-read only after a change and stat'ed at
// most once per interval however many requests arrive.
type cached[T any] struct {
	state   fileState
	checked time.Time
	info    fs.FileInfo // of the loaded file; nil unless state is fileLoaded
	err     error       // why the file is unreadable
	val     T           // parse result; meaningful when state is fileLoaded
}

// refresh re-checks the file when the interval has passed. It returns the
// file's new content and true when the state changed and the caller must
// re-parse (state fileLoaded) or report (fileMissing, fileUnreadable).
func (c *cached[T]) refresh(path string, now time.Time, interval time.Duration) ([]byte, bool) {
	if c.state != fileUnchecked && now.Sub(c.checked) < interval {
		return nil, false
	}
	c.checked = now
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, c.set(fileMissing, nil)
	case err != nil:
		return nil, c.set(fileUnreadable, err)
	case !fi.Mode().IsRegular():
		return nil, c.set(fileUnreadable, errors.New(path+": not a regular file"))
	}
	// Comparing the inode too catches an atomic rename-over that happens to
	// keep size and mtime.
	if c.state == fileLoaded && os.SameFile(c.info, fi) && fi.Size() == c.info.Size() && fi.ModTime().Equal(c.info.ModTime()) {
		return nil, false
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, c.set(fileMissing, nil)
		}
		return nil, c.set(fileUnreadable, err)
	}
	// fi is from before the read: if the file changes during the read, the next
	// check sees a newer mtime and reads it again.
	c.state, c.info, c.err = fileLoaded, fi, nil
	return data, true
}

// set records a missing or unreadable file and reports whether that is news.
func (c *cached[T]) set(s fileState, err error) bool {
	changed := c.state != s || (err != nil && (c.err == nil || c.err.Error() != err.Error()))
	var zero T
	c.state, c.info, c.err, c.val = s, nil, err, zero
	return changed
}
