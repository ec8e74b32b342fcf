package audit

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Rotation keeps the chain: logrotate moves audit.log to audit.log.1 (later
// compressed to audit.log.2.gz ...) and sends SIGHUP; the daemon calls
// Reopen, which writes the head file and carries the chain on into the new,
// empty audit.log: its first line has the next seq and the hash of the
// rotated file's last line as prev. VerifySet checks such a set of files as
// one chain, and Open continues it after a restart from the head file.

// Reopen closes the log file and opens its path again, after the file was
// moved away for rotation (or unchanged, which is harmless). The chain goes
// on from the last line written. A non-empty file at the path that does not
// end where the chain does is refused: appending to it would splice two
// chains.
func (l *Log) Reopen() error {
	l.headMu.Lock()
	defer l.headMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errors.New("audit reopen: log is closed")
	}
	if l.err != nil {
		return l.err
	}
	// The head file vouches for the rotated file's last line and seeds the
	// new file's chain if the daemon restarts before the next append.
	if err := l.writeHead(); err != nil {
		return fmt.Errorf("audit reopen: %w", err)
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit reopen: %w", err)
	}
	c, err := tailChain(f)
	if err == nil && c.seq != 0 && c != l.c {
		err = fmt.Errorf("%s ends at seq %d, not at the chain head seq %d: not continuing another chain", l.path, c.seq, l.c.seq)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("audit reopen: %w", err)
	}
	old := l.f
	l.f = f
	return old.Close()
}

// continueRotated returns the chain an empty log continues after rotation:
// the head file's, provided the newest rotated file ends with the line the
// head records. Without a rotated file an empty log with a head was emptied,
// which Open refuses as before.
func continueRotated(path string, head *headFile) (chain, bool, error) {
	rotated := RotatedSiblings(path)
	if len(rotated) == 0 {
		return chain{}, false, nil
	}
	newest := rotated[len(rotated)-1]
	last, err := lastLineOf(newest)
	if err != nil {
		return chain{}, false, fmt.Errorf("reading the rotated log %s: %w", newest, err)
	}
	if last == nil || hashLine(last) != head.Hash {
		return chain{}, false, fmt.Errorf("the log is empty and the newest rotated file %s does not end with the line the head file records (seq %d); run audit verify", newest, head.Seq)
	}
	return chain{seq: head.Seq, hash: head.Hash}, true, nil
}

// lastLineOf returns the last line of a plain or gzip'ed file.
func lastLineOf(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, gz, err := maybeGzip(f)
	if err != nil {
		return nil, err
	}
	if !gz {
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		line, torn, err := lastLine(f, st.Size())
		if err == nil && torn {
			err = errors.New("last line has no newline")
		}
		return line, err
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var last []byte
	for {
		line, complete, err := readLine(br)
		if errors.Is(err, io.EOF) {
			return last, nil
		}
		if err != nil {
			return nil, err
		}
		if !complete {
			return nil, errors.New("last line has no newline")
		}
		last = append(last[:0], line...)
	}
}

// OpenLogFile opens an audit log file for reading; a gzip'ed one (a
// rotated file logrotate compressed) is decompressed.
func OpenLogFile(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, gz, err := maybeGzip(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !gz {
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{r, f}, nil
}

// maybeGzip returns a reader of the file's content, decompressing it when it
// starts with the gzip magic bytes.
func maybeGzip(f *os.File) (io.Reader, bool, error) {
	var magic [2]byte
	n, err := f.ReadAt(magic[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, false, err
	}
	if n == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, false, err
		}
		return zr, true, nil
	}
	return f, false, nil
}

// rotationKey splits a file name into the live log it was rotated from and
// its age: audit.log is the live file (age 0); audit.log.3(.gz) has age 3;
// audit.log-20261202(.gz) (logrotate's dateext) sorts by its date, older
// first. ok is false for names that are not a rotation of a log.
func rotationKey(path string) (base string, num int, date string, ok bool) {
	name := strings.TrimSuffix(path, ".gz")
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		if n, err := strconv.Atoi(name[i+1:]); err == nil && n > 0 {
			return name[:i], n, "", true
		}
	}
	if i := strings.LastIndexByte(name, '-'); i > 0 && i > strings.LastIndexByte(name, '/') {
		if s := name[i+1:]; s != "" && strings.Trim(s, "0123456789") == "" {
			return name[:i], 0, s, true
		}
	}
	return path, 0, "", false
}

// RotatedSiblings lists the rotated files of the live log at path that exist
// (audit.log.1, audit.log.2.gz, audit.log-20261202 ...), oldest first.
func RotatedSiblings(path string) []string {
	path = filepath.Clean(path)
	// ReadDir rather than Glob: a directory name may hold glob syntax.
	entries, _ := os.ReadDir(filepath.Dir(path))
	var out []string
	for _, e := range entries {
		m := filepath.Join(filepath.Dir(path), e.Name())
		if base, _, _, ok := rotationKey(m); ok && base == path && e.Type().IsRegular() {
			out = append(out, m)
		}
	}
	return orderRotation(out)
}

// orderRotation sorts files of one log oldest first: highest number first,
// then dates ascending, the live file last.
func orderRotation(paths []string) []string {
	out := append([]string(nil), paths...)
	sort.SliceStable(out, func(i, j int) bool {
		_, ni, di, oki := rotationKey(out[i])
		_, nj, dj, okj := rotationKey(out[j])
		switch {
		case oki != okj:
			return oki // rotated before live
		case ni != nj:
			return ni > nj
		default:
			return di < dj
		}
	})
	return out
}

// GroupRotation groups files by the live log they belong to (audit.log with
// audit.log.1 and audit.log.2.gz), each group oldest first, groups in the
// order their first file was given.
func GroupRotation(paths []string) [][]string {
	var order []string
	groups := map[string][]string{}
	for _, p := range paths {
		base, _, _, _ := rotationKey(p)
		if _, seen := groups[base]; !seen {
			order = append(order, base)
		}
		groups[base] = append(groups[base], p)
	}
	var out [][]string
	for _, b := range order {
		out = append(out, orderRotation(groups[b]))
	}
	return out
}

// FileChainError is a break in a set of files verified as one chain: the
// file and its line.
type FileChainError struct {
	File string
	*BrokenChainError
}

// Error names the file, the line within it, the seq and the reason.
func (e *FileChainError) Error() string { return e.File + ": " + e.BrokenChainError.Error() }

// Unwrap returns the *BrokenChainError.
func (e *FileChainError) Unwrap() error { return e.BrokenChainError }

// SetOptions tune VerifySet.
type SetOptions struct {
	// Partial accepts a set whose oldest file starts after seq 1: the files
	// before it were deleted by the rotation policy. Every link within the
	// set is still checked.
	Partial bool
}

// SetResult describes a verified set.
type SetResult struct {
	Files    []string // in chain order, oldest first
	Records  int
	FirstSeq uint64
	LastSeq  uint64
}

// VerifySet verifies rotated files of one audit log (plain or gzip'ed, in
// any order on the command line) as one chain: each file's first line must
// chain to the previous file's last. When the live file is in the set, its
// head file is checked too, as VerifyFile does. The first break is a
// *FileChainError naming the file and its line.
func VerifySet(paths []string, opts SetOptions) (SetResult, error) {
	files := orderRotation(paths)
	res := SetResult{Files: files}
	var head *headFile
	live := ""
	for _, f := range files {
		if _, _, _, rotated := rotationKey(f); !rotated {
			live = f
		}
	}
	if live != "" {
		var err error
		if head, err = readHeadFile(headPath(live)); err != nil {
			return res, err
		}
	}
	var c chain
	first := true
	liveLines := 0
	for _, path := range files {
		n, err := verifyInto(path, &c, head, first && opts.Partial, &res)
		if err != nil {
			return res, err
		}
		if n > 0 {
			first = false
		}
		if path == live {
			liveLines = n
		}
	}
	if head != nil && c.seq < head.Seq {
		return res, &FileChainError{File: live, BrokenChainError: &BrokenChainError{
			Line: liveLines + 1, Seq: head.Seq,
			Reason: fmt.Sprintf("the chain ends at seq %d but %s records seq %d (lines removed from the end)", c.seq, headPath(live), head.Seq),
		}}
	}
	res.LastSeq = c.seq
	return res, nil
}

// verifyInto advances c over one file of a set.
func verifyInto(path string, c *chain, head *headFile, seed bool, res *SetResult) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("audit verify: %w", err)
	}
	defer f.Close()
	r, _, err := maybeGzip(f)
	if err != nil {
		return 0, fmt.Errorf("audit verify %s: %w", path, err)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	broken := func(n int, seq uint64, reason string) error {
		return &FileChainError{File: path, BrokenChainError: &BrokenChainError{Line: n, Seq: seq, Reason: reason}}
	}
	for n := 0; ; n++ {
		line, complete, err := readLine(br)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, broken(n+1, 0, err.Error())
		}
		if !complete {
			return n, broken(n+1, 0, "last line has no newline (file truncated mid-line or torn write)")
		}
		if n == 0 && seed {
			// The oldest file given starts the chain wherever it starts.
			var h header
			if json.Unmarshal(line, &h) == nil && h.Seq != nil && h.Prev != nil && *h.Seq > 0 {
				*c = chain{seq: *h.Seq - 1, hash: *h.Prev}
			}
		}
		seq, reason := c.link(line)
		if res.Records == 0 {
			res.FirstSeq = seq
		}
		if reason == "" && head != nil && seq == head.Seq && c.hash != head.Hash {
			reason = "line differs from the one recorded in the head file (line edited)"
		}
		if reason != "" {
			if n == 0 && res.Records > 0 {
				reason += "; it does not continue the previous file of the set"
			}
			return n, broken(n+1, seq, reason)
		}
		res.Records++
	}
}
