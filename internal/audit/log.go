package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
)

// DefaultHeadEvery is how many lines may pass between head file syncs when
// Options.HeadEvery is zero.
const DefaultHeadEvery = 1000

// Options tunes a Log.
type Options struct {
	// Sync fsyncs the log after every line: a line is on disk before Append
	// returns, at the cost of one fsync per request.
	Sync bool
	// HeadEvery is how many lines are appended between syncs of the head
	// file (path + ".head"); it is always written on Close. Removal of lines
	// appended since the last synced head is not detectable locally after a
	// crash. Zero means DefaultHeadEvery.
	HeadEvery int
	// OnAppend, if set, receives every line (without newline) right after it
	// was written, in log order; the daemon publishes it to
	// protocol.AuditSubject. It runs under the Log's lock, so it must be quick
	// and must not call the Log; line is only valid during the call
	// (nats.Conn.Publish copies it).
	OnAppend func(line []byte)
	// Checkpoint, when set, signs chain checkpoints with the node's own key:
	// it returns the signature over msg and the signing certificate (DER).
	// A checkpoint line is appended every CheckpointEvery lines and at
	// Close, so that a forger without the key cannot recompute the chain
	// past it (see VerifyCheckpoints).
	Checkpoint func(msg []byte) (sig, certDER []byte)
	// CheckpointEvery is the number of lines between checkpoints (default
	// DefaultCheckpointEvery).
	CheckpointEvery int
	// Node is the identity recorded in checkpoints.
	Node string
}

// Log is a local, append-only, hash-chained audit log. It is safe for
// concurrent use; appends are serialized.
type Log struct {
	path string
	opts Options

	// headMu is held while the head file is replaced (writeHead,
	// syncHead); it is taken before mu, or with TryLock while holding mu.
	headMu          sync.Mutex
	mu              sync.Mutex
	f               *os.File
	c               chain
	buf             []byte   // line being built, reused between appends
	headBuf         []byte   // head record being written, reused likewise
	sinceHead       int      // appends since the head file was last written
	sinceCheckpoint int      // lines since the last signed checkpoint
	hf              *os.File // the head file, rewritten in place after every append
	err             error    // set after a torn write: the file no longer ends where the chain does
	// whileSyncing, in tests, runs once in syncHead while l.mu is released.
	whileSyncing func()
}

// Open opens or creates the audit log at path (mode 0600) and continues its
// chain from the last line. It fails when the log ends in a partial line or
// before the head recorded in path + ".head": the log was truncated or a write
// was torn, and carrying on would hide it. `mco audit verify` tells which.
func Open(path string, opts Options) (*Log, error) {
	if opts.HeadEvery <= 0 {
		opts.HeadEvery = DefaultHeadEvery
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = DefaultCheckpointEvery
	}
	head, err := readHeadFile(headPath(path))
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	c, err := tailChain(f)
	if err == nil && c.seq == 0 && head != nil {
		// An empty log with a head: rotated away (the chain goes on from
		// the rotated file) or emptied (refused below).
		if rc, ok, rerr := continueRotated(path, head); rerr != nil {
			err = rerr
		} else if ok {
			c = rc
		}
	}
	if err == nil {
		err = checkHead(c, head)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	return &Log{path: path, opts: opts, f: f, c: c}, nil
}

// tailChain reads the chain head from the last line of f.
func tailChain(f *os.File) (chain, error) {
	st, err := f.Stat()
	if err != nil {
		return chain{}, err
	}
	line, torn, err := lastLine(f, st.Size())
	if err != nil {
		return chain{}, err
	}
	if torn {
		return chain{}, fmt.Errorf("%w; mco audit repair removes it, recording the repair in the chain", ErrTornLine)
	}
	if line == nil {
		return chain{}, nil
	}
	var h header
	if err := json.Unmarshal(line, &h); err != nil || h.Seq == nil {
		return chain{}, errors.New("last line has no seq; run audit verify")
	}
	return chain{seq: *h.Seq, hash: hashLine(line)}, nil
}

// checkHead compares the log's last line with the recorded head.
func checkHead(c chain, head *headFile) error {
	switch {
	case head == nil || c.seq > head.Seq:
		return nil
	case c.seq < head.Seq:
		return fmt.Errorf("log ends at seq %d but the head file records seq %d (lines removed from the end); run audit verify", c.seq, head.Seq)
	case c.hash != head.Hash:
		return fmt.Errorf("last line (seq %d) differs from the head file (line edited); run audit verify", c.seq)
	}
	return nil
}

// Append writes recs as the next lines of the log, in order and, between
// checkpoints, with one write: a request's record and its completion cost
// one system call together. Each record must marshal to a JSON object
// without "seq" or "prev" keys, normally a RequestRecord or a
// CompleteRecord. An error means the record it names is not in the log (the
// ones before it may be), and the daemon fails the request closed.
func (l *Log) Append(recs ...any) error {
	// Marshal outside the lock: it is the expensive part and needs no order.
	var small [2][]byte
	bodies := small[:0]
	for _, rec := range recs {
		body, err := encodeRecord(rec)
		if err != nil {
			return fmt.Errorf("audit append: %w", err)
		}
		if err := checkBody(rec, body); err != nil {
			return fmt.Errorf("audit append: %w", err)
		}
		bodies = append(bodies, body)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	for len(bodies) > 0 {
		// A checkpoint due in the middle of the records goes between them:
		// no run of unsigned lines may be longer than CheckpointEvery.
		n := len(bodies)
		if l.opts.Checkpoint != nil {
			n = max(1, min(n, l.opts.CheckpointEvery-l.sinceCheckpoint))
		}
		if err := l.appendLocked(bodies[:n]...); err != nil {
			return err
		}
		bodies = bodies[n:]
		if l.opts.Checkpoint != nil {
			if l.sinceCheckpoint += n; l.sinceCheckpoint >= l.opts.CheckpointEvery {
				// The request's lines are written; a failed checkpoint
				// only leaves a longer unsigned run, which verify --ca
				// reports.
				_ = l.checkpointLocked()
			}
		}
	}
	if l.sinceHead >= l.opts.HeadEvery && l.headMu.TryLock() {
		// On a goroutine of its own: the appending request must not wait
		// for the fsyncs either (it holds one of the node's request slots).
		// Close and Reopen wait for it (headMu).
		go func() {
			defer l.headMu.Unlock()
			l.mu.Lock()
			defer l.mu.Unlock()
			l.syncHead()
		}()
	}
	return nil
}

// appendLocked writes record bodies as the next lines, with one write;
// l.mu is held.
func (l *Log) appendLocked(bodies ...[]byte) error {
	if l.err != nil {
		return l.err
	}
	if l.f == nil {
		return errors.New("audit append: log is closed")
	}

	c := l.c
	b := l.buf[:0]
	var small [4]int
	ends := small[:0] // where each line ends in b (before its newline)
	for _, body := range bodies {
		start := len(b)
		b = append(b, `{"seq":`...)
		b = strconv.AppendUint(b, c.seq+1, 10)
		b = append(b, `,"prev":"`...)
		b = append(b, c.hash...)
		b = append(b, '"')
		if len(body) > 2 { // not "{}"
			b = append(b, ',')
		}
		b = append(b, body[1:]...)
		c = chain{seq: c.seq + 1, hash: hashLine(b[start:])}
		ends = append(ends, len(b))
		b = append(b, '\n')
	}
	l.buf = b

	n, err := l.f.Write(b)
	if err != nil {
		if n > 0 {
			// Part of a line is in the file; chaining on would hide it.
			l.err = fmt.Errorf("audit append %s: torn write, log unusable until repaired: %w", l.path, err)
			return l.err
		}
		return fmt.Errorf("audit append %s: %w", l.path, err)
	}
	if l.opts.Sync {
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("audit append %s: %w", l.path, err)
		}
	}
	l.c = c
	if l.opts.OnAppend != nil {
		start := 0
		for _, end := range ends {
			l.opts.OnAppend(b[start:end])
			start = end + 1
		}
	}
	// The head follows every write (one in-place write, not synced), so
	// lines removed from the end are detected up to the last line written,
	// not only up to the last synced head.
	l.touchHead()
	l.sinceHead += len(bodies)
	return nil
}

// checkBody rejects records that would not form a valid line.
func checkBody(rec any, body []byte) error {
	if len(body) < 2 || body[0] != '{' {
		return fmt.Errorf("record %T is not a JSON object", rec)
	}
	if len(body) > maxLine-100 {
		return fmt.Errorf("record of %d bytes is too large", len(body))
	}
	switch rec.(type) {
	case RequestRecord, *RequestRecord, CompleteRecord, *CompleteRecord:
		return nil // known not to carry chain keys
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(body, &keys); err != nil {
		return err
	}
	for _, k := range []string{"seq", "prev"} {
		if _, ok := keys[k]; ok {
			return fmt.Errorf("record %T has a %q key, which the chain owns", rec, k)
		}
	}
	return nil
}

// writeHead records the chain head in the head file. The log is synced first
// so the head never gets to disk ahead of the lines it vouches for, and the
// file is replaced by rename so a crash leaves the old or the new head.
// l.headMu and l.mu are held.
func (l *Log) writeHead() error {
	if l.c.seq == 0 {
		return nil
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("audit head: %w", err)
	}
	data := headRecord(l.c)
	hp := headPath(l.path)
	tmp := hp + ".tmp"
	if err := writeFileSync(tmp, data); err != nil {
		return fmt.Errorf("audit head: %w", err)
	}
	if err := os.Rename(tmp, hp); err != nil {
		return fmt.Errorf("audit head: %w", err)
	}
	l.sinceHead = 0
	if l.hf != nil {
		// The rename replaced the file touchHead writes into.
		l.hf.Close()
		l.hf = nil
	}
	return nil
}

// syncHead is writeHead for the periodic head sync (Options.HeadEvery)
// without holding up appends for its fsyncs, which held up every request
// of a busy node (8 % of its throughput, measured): l.mu is released while
// the log and the new head file are synced, and taken again to put the new
// head in place and bring it up to the lines appended meanwhile. l.mu and
// l.headMu are held on entry and on return.
// Failure only narrows what truncation detection covers after a crash, so
// it is not an append's failure.
func (l *Log) syncHead() {
	c, f := l.c, l.f
	l.sinceHead = 0
	tmp := headPath(l.path) + ".tmp"
	hook := l.whileSyncing
	l.whileSyncing = nil
	l.mu.Unlock()
	err := f.Sync() // the head never gets to disk ahead of its lines
	if err == nil {
		err = writeFileSync(tmp, headRecord(c))
	}
	if hook != nil {
		hook()
	}
	l.mu.Lock()
	if err != nil || l.f != f {
		return
	}
	if err := os.Rename(tmp, headPath(l.path)); err != nil {
		return
	}
	if l.hf != nil {
		// The rename replaced the file touchHead writes into.
		l.hf.Close()
		l.hf = nil
	}
	l.touchHead()
}

// headWidth is the fixed size of a head record, so touchHead can overwrite
// it in place with one write: seq and hash padded with blanks, which JSON
// ignores.
const headWidth = 128

func headRecord(c chain) []byte { return appendHeadRecord(make([]byte, 0, headWidth), c) }

// appendHeadRecord appends the head record of c to b; c.hash is hex, so it
// needs no escaping.
func appendHeadRecord(b []byte, c chain) []byte {
	start := len(b)
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, c.seq, 10)
	b = append(b, `,"hash":"`...)
	b = append(b, c.hash...)
	b = append(b, `"}`...)
	for len(b)-start < headWidth-1 {
		b = append(b, ' ')
	}
	return append(b, '\n')
}

// touchHead overwrites the head file with the current chain head. Failure
// only narrows what truncation detection covers, so it is not the append's
// failure.
func (l *Log) touchHead() {
	if l.hf == nil {
		f, err := os.OpenFile(headPath(l.path), os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			return
		}
		l.hf = f
	}
	l.headBuf = appendHeadRecord(l.headBuf[:0], l.c)
	if _, err := l.hf.WriteAt(l.headBuf, 0); err != nil {
		l.hf.Close()
		l.hf = nil
	}
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// Head returns the seq and hash of the last line written (0 and "" for an
// empty log).
func (l *Log) Head() (seq uint64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.c.seq, l.c.hash
}

// Close writes the head file and closes the log. Appends after Close fail.
func (l *Log) Close() error {
	l.headMu.Lock()
	defer l.headMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	var err error
	if l.err == nil && l.opts.Checkpoint != nil && l.sinceCheckpoint > 0 {
		// A clean stop leaves no unsigned tail.
		err = l.checkpointLocked()
	}
	if l.err == nil {
		err = errors.Join(err, l.writeHead())
	}
	err = errors.Join(err, l.f.Close())
	l.f = nil
	if l.hf != nil {
		l.hf.Close()
		l.hf = nil
	}
	if err != nil {
		return fmt.Errorf("audit log %s: %w", l.path, err)
	}
	return nil
}
