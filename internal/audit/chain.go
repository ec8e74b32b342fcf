package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxLine bounds one audit line so that a corrupt file without newlines cannot
// make a reader buffer it whole.
const maxLine = 16 << 20

// BrokenChainError reports the first place where an audit log stops being an
// intact hash chain.
type BrokenChainError struct {
	Line   int    // 1-based line number in the file; one past the end for removed tail lines
	Seq    uint64 // the seq the line carries or, for removed tail lines, the recorded head; 0 if unknown
	Reason string
}

// Error names the line, seq and reason, e.g. for `mco audit verify`.
func (e *BrokenChainError) Error() string {
	if e.Seq == 0 {
		return fmt.Sprintf("audit chain broken at line %d: %s", e.Line, e.Reason)
	}
	return fmt.Sprintf("audit chain broken at line %d (seq %d): %s", e.Line, e.Seq, e.Reason)
}

// header is the part of a line the chain is built from.
type header struct {
	Seq  *uint64 `json:"seq"`
	Prev *string `json:"prev"`
}

// chain is the running head of a hash chain: the seq and hash of the last line.
// The zero value expects a first line with seq 1 and prev "".
type chain struct {
	seq  uint64
	hash string
}

// hashLine is the chain hash of one line (without its newline).
func hashLine(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}

// link advances the chain past line and returns why the link is broken, or ""
// if it is intact. It advances even over a broken link so that a collector
// flags one break once instead of every record after it.
func (c *chain) link(line []byte) (seq uint64, reason string) {
	fresh := c.seq == 0 && c.hash == ""
	want := c.seq + 1
	wantPrev := c.hash
	c.hash = hashLine(line)
	c.seq = want // best guess when the line does not say

	var h header
	if err := json.Unmarshal(line, &h); err != nil {
		return 0, fmt.Sprintf("invalid JSON: %v", err)
	}
	if h.Seq == nil {
		return 0, `missing "seq"`
	}
	seq = *h.Seq
	c.seq = seq
	if h.Prev == nil {
		return seq, `missing "prev"`
	}
	switch {
	case fresh && seq != 1:
		return seq, fmt.Sprintf("chain starts at seq %d, not 1 (earlier lines removed)", seq)
	case seq > want:
		return seq, fmt.Sprintf("seq jumps from %d to %d (lines removed or reordered)", want-1, seq)
	case seq < want:
		return seq, fmt.Sprintf("seq goes back from %d to %d (lines duplicated or reordered)", want-1, seq)
	case *h.Prev != wantPrev:
		return seq, "prev does not match the hash of the previous line (previous line edited, or lines removed or reordered)"
	}
	return seq, ""
}

// Verify reads an audit log and checks that every line is a JSON object ending
// in a newline, that seq counts up from 1 by one, and that prev is the hash of
// the previous line. It returns the number of intact lines before the first
// break and, if there is one, a *BrokenChainError.
//
// Lines removed from the end of a log leave a valid, shorter chain; only the
// head file (see VerifyFile) or the central copy reveals that.
func Verify(r io.Reader) (n int, err error) {
	n, _, err = verify(r, nil)
	return n, err
}

// verify is Verify that also checks the line at head.seq against head.hash
// and returns the chain's final head.
func verify(r io.Reader, head *headFile) (int, chain, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var c chain
	for n := 0; ; n++ {
		line, complete, err := readLine(br)
		if errors.Is(err, io.EOF) {
			return n, c, nil
		}
		if err != nil {
			return n, c, &BrokenChainError{Line: n + 1, Reason: err.Error()}
		}
		if !complete {
			return n, c, &BrokenChainError{Line: n + 1, Reason: "last line has no newline (file truncated mid-line or torn write)"}
		}
		seq, reason := c.link(line)
		if reason == "" && head != nil && seq == head.Seq && c.hash != head.Hash {
			reason = "line differs from the one recorded in the head file (line edited)"
		}
		if reason != "" {
			return n, c, &BrokenChainError{Line: n + 1, Seq: seq, Reason: reason}
		}
	}
}

// VerifyFile verifies the audit log at path like Verify and, when the Log's
// head file (path + ".head") exists, also reports a log that ends before the
// recorded head, which is how removal of the last lines shows up locally.
// Lines appended after the head file was last written (at most
// Options.HeadEvery-1, or all since a crash) are not covered by it.
func VerifyFile(path string) (int, error) {
	head, err := readHeadFile(headPath(path))
	if err != nil {
		return 0, err
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("audit verify: %w", err)
	}
	defer f.Close()
	n, c, err := verify(f, head)
	if err != nil {
		return n, fmt.Errorf("audit verify %s: %w", path, err)
	}
	if head != nil && c.seq < head.Seq {
		return n, fmt.Errorf("audit verify %s: %w", path, &BrokenChainError{
			Line:   n + 1,
			Seq:    head.Seq,
			Reason: fmt.Sprintf("log ends at seq %d but %s records seq %d (lines removed from the end)", c.seq, headPath(path), head.Seq),
		})
	}
	return n, nil
}

// readLine returns the next line without its newline; complete is false for
// a final line that has none. The line may alias br's buffer.
func readLine(br *bufio.Reader) (line []byte, complete bool, err error) {
	var buf []byte
	for {
		frag, err := br.ReadSlice('\n')
		switch {
		case err == nil && buf == nil:
			return frag[:len(frag)-1], true, nil
		case len(buf)+len(frag) > maxLine+1:
			return nil, false, fmt.Errorf("line longer than %d bytes", maxLine)
		}
		buf = append(buf, frag...)
		switch {
		case err == nil:
			return buf[:len(buf)-1], true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) > 0:
			return buf, false, nil
		default:
			return nil, false, err
		}
	}
}

// lastLine reads the last line of a file of the given size backwards from the
// end, so that opening a large log costs a few reads. torn reports a final
// line without a newline; an empty file gives a nil line.
func lastLine(f io.ReaderAt, size int64) (line []byte, torn bool, err error) {
	if size == 0 {
		return nil, false, nil
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], size-1); err != nil {
		return nil, false, err
	}
	end := size
	if last[0] == '\n' {
		end--
	} else {
		torn = true
	}
	const chunk = 4096
	var tail []byte // the file's bytes [pos, end)
	for pos := end; pos > 0; {
		n := min(int64(chunk), pos)
		pos -= n
		if int64(len(tail))+n > maxLine {
			return nil, torn, fmt.Errorf("last line longer than %d bytes", maxLine)
		}
		buf := make([]byte, n, n+int64(len(tail)))
		if _, err := f.ReadAt(buf, pos); err != nil {
			return nil, torn, err
		}
		tail = append(buf, tail...)
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			return tail[i+1:], torn, nil
		}
	}
	return tail, torn, nil
}

// headFile is the Log's sidecar record of the chain head at some point.
type headFile struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

func headPath(logPath string) string { return logPath + ".head" }

// readHeadFile returns nil when there is no head file.
func readHeadFile(path string) (*headFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit head file: %w", err)
	}
	var h headFile
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("audit head file %s: %w", path, err)
	}
	if h.Seq == 0 || len(h.Hash) != sha256.Size*2 {
		return nil, fmt.Errorf("audit head file %s: seq and hash must be set", path)
	}
	return &h, nil
}
