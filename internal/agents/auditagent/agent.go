// Package auditagent is the built-in "audit" agent: it reads the node's local
// audit log so that a central collector (`mco audit collect`) can fetch the
// lines it missed, over the same signed, authorized and audited RPC as every
// other request. It never writes.
package auditagent

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/ddl"
	"github.com/marionette/mco/internal/audit"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/protocol"
)

//go:embed audit.json
var ddlJSON []byte

// DDL returns the agent's DDL, freshly parsed.
func DDL() (*ddl.Agent, error) {
	d, err := ddl.Parse("auditagent/audit.json", ddlJSON)
	if err != nil {
		return nil, fmt.Errorf("audit agent DDL: %w", err)
	}
	return d, nil
}

// MaxReplyBytes caps the JSON-encoded line bytes of one reply, so that the
// signed reply (base64 in its envelope) stays under the broker's default
// 1 MiB message limit. A longer range is paged with "next".
const MaxReplyBytes = 512 << 10

// maxLine matches the audit log's own bound on one line.
const maxLine = 16 << 20

// New returns the audit agent reading the audit log at path. Only callers
// whose certname readers matches may read it, whatever ActionPolicy says: the
// log holds every caller's arguments, so reading it is reserved to the
// collectors named in the node's own configuration (audit.readers).
func New(path string, readers *security.Matcher) (*agent.Agent, error) {
	d, err := DDL()
	if err != nil {
		return nil, err
	}
	a := agent.New(d)
	a.Register("lines", func(ctx context.Context, req *agent.Request, rep *agent.Reply) {
		if caller := strings.TrimPrefix(req.CallerID, "cert="); !readers.Match(caller) {
			rep.Fail("%q may not read this node's audit log: it is not in audit.readers", caller)
			return
		}
		from, ok := intInput(req.Data, "from")
		if !ok || from < 1 {
			rep.FailWith(protocol.InvalidData, "input \"from\" must be an integer of 1 or more")
			return
		}
		to, given := intInput(req.Data, "to")
		switch {
		case !given:
			to = 0
		case to < from:
			rep.FailWith(protocol.InvalidData, "input \"to\" (%d) must not be less than \"from\" (%d)", to, from)
			return
		}
		res, err := Read(ctx, path, uint64(from), uint64(to), MaxReplyBytes)
		if err != nil {
			rep.Fail("%v", err)
			return
		}
		if rep.Data == nil {
			rep.Data = map[string]any{}
		}
		rep.Data["lines"] = res.Lines
		rep.Data["next"] = res.Next
		rep.Data["head"] = res.Head
	})
	return a, nil
}

// intInput returns an integer input as the DDL validation left it (int64),
// or as a JSON number when a caller bypassed it.
func intInput(data map[string]any, name string) (int64, bool) {
	switch v := data[name].(type) {
	case int64:
		return v, true
	case float64:
		return int64(v), v == float64(int64(v))
	}
	return 0, false
}

// Result is one page of audit lines.
type Result struct {
	Lines []string // raw lines without newline, in log order
	Next  uint64   // seq to ask for next when capped; 0 when the range is complete
	Head  uint64   // seq of the log's last line (0 when it cannot be told)
}

// Read returns the lines of the audit log at path whose seq is in [from, to]
// (to 0: up to the end), stopping before the JSON-encoded lines would exceed
// maxBytes (at least one line is always returned). A last line without a
// newline that is not valid JSON is a write in progress and is ignored.
//
// Sequence numbers grow with the file offset, so Read finds the first wanted
// line by binary search and reads only the page: fetching a long log page by
// page costs the size of the log, not its square.
func Read(ctx context.Context, path string, from, to uint64, maxBytes int) (*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	// Only complete lines count: a last line without newline is a write in
	// progress.
	end, head := tail(f, st.Size())
	res := &Result{Lines: []string{}, Head: head}
	size := 0
	// add takes one line in seq order; it reports when the page is done.
	add := func(line []byte, seq uint64) (done bool) {
		if seq < from {
			return false
		}
		if to != 0 && seq > to {
			return true
		}
		enc := jsonSize(line)
		if len(res.Lines) > 0 && size+enc > maxBytes {
			res.Next = seq
			return true
		}
		size += enc
		res.Lines = append(res.Lines, string(line))
		return false
	}
	// Lines older than the live file's first were moved away by log
	// rotation (audit.log.1, audit.log.2.gz ...): read those first.
	if first := firstSeq(f, end); first == 0 || from < first {
		for _, old := range audit.RotatedSiblings(path) {
			done, err := readRotated(ctx, old, add)
			if err != nil {
				return nil, err
			}
			if done {
				return res, nil
			}
		}
	}
	start, err := seekSeq(f, end, from)
	if err != nil {
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	sc := bufio.NewScanner(io.NewSectionReader(f, start, end-start))
	sc.Buffer(make([]byte, 0, 64<<10), maxLine+1)
	for n := 1; sc.Scan(); n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		line := sc.Bytes()
		seq, ok := lineSeq(line)
		if !ok {
			where := fmt.Sprintf("line %d", n)
			if start > 0 {
				where = fmt.Sprintf("line %d after byte %d", n, start)
			}
			return nil, fmt.Errorf("audit log %s %s: no seq (run mco audit verify on it)", path, where)
		}
		if add(line, seq) {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	return res, nil
}

// firstSeq is the seq of the first line of the log's first end bytes (0
// for an empty log).
func firstSeq(f *os.File, end int64) uint64 {
	if end == 0 {
		return 0
	}
	sc := bufio.NewScanner(io.NewSectionReader(f, 0, end))
	sc.Buffer(make([]byte, 0, 64<<10), maxLine+1)
	if !sc.Scan() {
		return 0
	}
	seq, _ := lineSeq(sc.Bytes())
	return seq
}

// readRotated feeds a rotated (possibly gzip'ed) log's lines to add, from
// the start: rotated files are read only when a collector asks for lines
// older than the live file.
func readRotated(ctx context.Context, path string, add func([]byte, uint64) bool) (bool, error) {
	r, err := audit.OpenLogFile(path)
	if err != nil {
		return false, fmt.Errorf("rotated audit log: %w", err)
	}
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine+1)
	for n := 1; sc.Scan(); n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return false, ctx.Err()
		}
		seq, ok := lineSeq(sc.Bytes())
		if !ok {
			return false, fmt.Errorf("rotated audit log %s line %d: no seq (run mco audit verify on it)", path, n)
		}
		if add(sc.Bytes(), seq) {
			return true, nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("rotated audit log %s: %w", path, err)
	}
	return false, nil
}

// lineSeq reads a line's seq. Lines written by the audit log start with
// {"seq":N, so that is read directly; anything else is decoded.
func lineSeq(line []byte) (uint64, bool) {
	if rest, ok := bytes.CutPrefix(line, []byte(`{"seq":`)); ok {
		var n uint64
		i := 0
		for ; i < len(rest) && rest[i] >= '0' && rest[i] <= '9' && i < 20; i++ {
			n = n*10 + uint64(rest[i]-'0')
		}
		if i > 0 && i < len(rest) && (rest[i] == ',' || rest[i] == '}') && n > 0 && bytes.HasSuffix(line, []byte("}")) {
			return n, true
		}
	}
	var h struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal(line, &h); err != nil || h.Seq == 0 {
		return 0, false
	}
	return h.Seq, true
}

// seekSeq returns the offset of a line start at or before the first line
// whose seq is at least from: offset 0, or the start of a line with a
// smaller seq. The forward scan from there skips what little is left.
func seekSeq(f *os.File, size int64, from uint64) (int64, error) {
	lo, hi := int64(0), size
	for hi-lo > 64<<10 {
		mid := lo + (hi-lo)/2
		lineStart, seq, ok, err := lineAfter(f, mid)
		if err != nil {
			return 0, err
		}
		if ok && seq < from {
			lo = lineStart
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// lineAfter reads the first complete line that starts after off and returns
// where it starts and its seq; ok is false when there is none or it has no
// seq.
func lineAfter(f *os.File, off int64) (start int64, seq uint64, ok bool, err error) {
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return 0, 0, false, err
	}
	r := bufio.NewReaderSize(f, 64<<10)
	skipped, err := r.ReadBytes('\n') // the rest of the line off falls in
	if err != nil {
		return 0, 0, false, nil
	}
	line, err := r.ReadBytes('\n')
	if err != nil {
		return 0, 0, false, nil // no complete line after off
	}
	seq, ok = lineSeq(bytes.TrimSuffix(line, []byte("\n")))
	return off + int64(len(skipped)), seq, ok, nil
}

// tail returns where the log's complete lines end (after the last newline)
// and the seq of the last of them (0 when that line is longer than the part
// read, or unreadable).
func tail(f *os.File, size int64) (end int64, head uint64) {
	const chunk = 64 << 10
	for off := max(0, size-chunk); ; off = max(0, off-chunk) {
		buf := make([]byte, min(chunk, size-off))
		if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
			return 0, 0
		}
		if nl := bytes.LastIndexByte(buf, '\n'); nl >= 0 {
			end = off + int64(nl) + 1
			break
		}
		if off == 0 {
			return 0, 0 // no complete line at all
		}
	}
	off := max(0, end-chunk)
	buf := make([]byte, end-off)
	if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
		return end, 0
	}
	begin := bytes.LastIndexByte(buf[:len(buf)-1], '\n') + 1
	if begin == 0 && off > 0 {
		return end, 0 // the last line starts before the part read
	}
	head, _ = lineSeq(buf[begin : len(buf)-1])
	return end, head
}

// jsonSize is how many bytes line takes as a JSON string.
func jsonSize(line []byte) int {
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(string(line))
	return buf.Len()
}
