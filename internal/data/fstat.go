package data

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"
)

// NewFStat returns the "fstat" plugin: fstat('/etc/issue') describes a path
// without following a final symlink. now supplies the clock for the *_age
// fields (nil means time.Now).
//
// Fields, in MCollective's forms so that its filters keep working: name (the
// path), output ("present" or "not present"), present (1 or 0; a missing
// path is present=0, not an error; filters may also write present=true),
// type (file, directory, symlink, socket, chardev, blockdev, fifo, unknown),
// size, mode (st_mode in octal as MCollective printed it: "100644" for a
// regular file with 0644), uid, gid, md5 (hex; regular files only, ""
// otherwise), mtime/ctime/atime (RFC 3339), mtime_seconds/ctime_seconds/
// atime_seconds (Unix time) and mtime_age/ctime_age/atime_age (seconds before
// now). Beyond MCollective: permissions (the permission bits alone, "0644",
// with setuid/setgid/sticky) and sha256.
func NewFStat(now func() time.Time) Plugin {
	if now == nil {
		now = time.Now
	}
	return fstat{now: now, hashes: &hashCache{m: map[hashKey]hashSums{}}}
}

type fstat struct {
	now    func() time.Time
	hashes *hashCache
}

// hashCache keeps the digests of files already hashed, keyed by what changes
// when a file is rewritten (path, size, mtime, ctime, inode): hashing a
// 100 MB file on every request that names it would make each such request
// cost seconds of disk and CPU.
type hashCache struct {
	mu sync.Mutex
	m  map[hashKey]hashSums
}

type hashKey struct {
	path         string
	size         int64
	mtime, ctime int64
	ino          uint64
}

type hashSums struct{ md5, sha256 string }

// maxCachedHashes bounds the cache; paths come from requests.
const maxCachedHashes = 512

func (c *hashCache) get(k hashKey) (hashSums, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.m[k]
	return h, ok
}

func (c *hashCache) put(k hashKey, h hashSums) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedHashes {
		clear(c.m)
	}
	c.m[k] = h
}

func (fstat) Name() string { return "fstat" }

func (f fstat) Query(ctx context.Context, path string) (map[string]any, error) {
	if path == "" {
		return nil, errors.New("fstat: empty path")
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]any{"name": path, "output": "not present", "present": 0}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fstat %s: %w", path, err)
	}
	st := statOf(fi)
	res := map[string]any{
		"name":        path,
		"output":      "present",
		"present":     1,
		"type":        fileType(fi.Mode()),
		"size":        fi.Size(),
		"mode":        stMode(fi.Mode()),
		"permissions": octalMode(fi.Mode()),
		"uid":         st.uid,
		"gid":         st.gid,
		"md5":         "",
		"sha256":      "",
	}
	now := f.now()
	for name, t := range map[string]time.Time{"mtime": fi.ModTime(), "ctime": st.ctime, "atime": st.atime} {
		res[name] = t.Format(time.RFC3339)
		res[name+"_seconds"] = t.Unix()
		res[name+"_age"] = int64(now.Sub(t) / time.Second)
	}
	if fi.Mode().IsRegular() {
		key := hashKey{path: path, size: fi.Size(), mtime: fi.ModTime().UnixNano(), ctime: st.ctime.UnixNano(), ino: st.ino}
		sums, ok := f.hashes.get(key)
		if !ok {
			md5sum, sha, err := hashFile(ctx, path)
			if err != nil {
				return nil, fmt.Errorf("fstat %s: %w", path, err)
			}
			sums = hashSums{md5: md5sum, sha256: sha}
			f.hashes.put(key, sums)
		}
		res["md5"], res["sha256"] = sums.md5, sums.sha256
	}
	return res, nil
}

func fileType(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "file"
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeCharDevice != 0:
		return "chardev"
	case m&fs.ModeDevice != 0:
		return "blockdev"
	}
	return "unknown"
}

// stMode renders the mode as Unix st_mode in octal, file type bits
// included, as MCollective's fstat printed it ("100644").
func stMode(m fs.FileMode) string {
	var typ uint32
	switch {
	case m.IsRegular():
		typ = 0o100000
	case m.IsDir():
		typ = 0o040000
	case m&fs.ModeSymlink != 0:
		typ = 0o120000
	case m&fs.ModeSocket != 0:
		typ = 0o140000
	case m&fs.ModeNamedPipe != 0:
		typ = 0o010000
	case m&fs.ModeCharDevice != 0:
		typ = 0o020000
	case m&fs.ModeDevice != 0:
		typ = 0o060000
	}
	return fmt.Sprintf("%o", typ|permBits(m))
}

// octalMode renders the Unix permission bits, including setuid (4000),
// setgid (2000) and sticky (1000) which Go keeps outside Perm().
func octalMode(m fs.FileMode) string { return fmt.Sprintf("%04o", permBits(m)) }

// permBits are the permission bits with setuid, setgid and sticky.
func permBits(m fs.FileMode) uint32 {
	bits := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits
}

func hashFile(ctx context.Context, path string) (md5sum, sha string, err error) {
	file, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	defer file.Close()
	m, s := md5.New(), sha256.New()
	if _, err := io.Copy(io.MultiWriter(m, s), ctxReader{ctx: ctx, r: file}); err != nil {
		return "", "", fmt.Errorf("hashing: %w", err)
	}
	return hex.EncodeToString(m.Sum(nil)), hex.EncodeToString(s.Sum(nil)), nil
}

// ctxReader stops hashing a huge file once the query is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
