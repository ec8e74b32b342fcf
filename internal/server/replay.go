package server

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Replay cache bounds (Options.ReplayMaxEntries, ReplayMaxPerCaller). An
// entry is a 16-byte key and a 16-byte value, so the total bound is ~30 MB
// at worst; the per-caller bound keeps one certificate from filling it for
// everybody else.
const (
	DefaultReplayMaxEntries   = 500_000
	DefaultReplayMaxPerCaller = 100_000
)

// Outcomes of replayCache.firstSeen other than "new".
var (
	errReplayed   = errors.New("already received")
	errCallerFull = errors.New("the caller's share of the replay cache is full")
	errCacheFull  = errors.New("the replay cache is full")
)

// replayCache remembers request ids until their validity ends, so that a
// second delivery of the same request — a replay, or the directed copy of a
// request already received by broadcast — is refused.
//
// Keys are a hash of the signer and the id, so one caller cannot pre-empt
// another's ids and every entry has the same small size whatever the id.
// When full, new requests are refused rather than old entries evicted:
// evicting would let a flood make room for a replay.
//
// With a file, every new id is appended to it (one write per request, no
// fsync: it must survive the daemon's restart or kill -9, and a machine
// crash also loses the in-flight requests). At start the file is read back,
// so a restart cannot re-accept a request seen before it.
type replayCache struct {
	maxEntries, maxPerCaller int

	mu        sync.Mutex
	seen      map[replayKey]replayEntry
	callers   map[string]*callerCount
	nextSweep time.Time

	path    string
	f       *os.File
	w       *bufio.Writer
	records int // lines in the file, live or not
}

type replayKey [16]byte

type replayEntry struct {
	until int64 // unix nanoseconds after which the id may be forgotten
	c     *callerCount
}

// callerCount is shared by all of a caller's entries, so the caller name is
// stored once.
type callerCount struct {
	name string
	n    int
}

func keyOf(caller, id string) replayKey {
	h := sha256.New()
	h.Write([]byte(caller))
	h.Write([]byte{0})
	h.Write([]byte(id))
	var k replayKey
	copy(k[:], h.Sum(nil))
	return k
}

func newReplayCache(maxEntries, maxPerCaller int) *replayCache {
	if maxEntries <= 0 {
		maxEntries = DefaultReplayMaxEntries
	}
	if maxPerCaller <= 0 {
		maxPerCaller = DefaultReplayMaxPerCaller
	}
	return &replayCache{maxEntries: maxEntries, maxPerCaller: maxPerCaller,
		seen: make(map[replayKey]replayEntry), callers: map[string]*callerCount{}}
}

// openReplayCache returns a cache persisted in path: the ids still valid at
// now are loaded, the file is rewritten with only them, and new ids are
// appended. A torn last line (the daemon killed mid-write) is ignored.
func openReplayCache(path string, now time.Time, maxEntries, maxPerCaller int) (*replayCache, error) {
	c := newReplayCache(maxEntries, maxPerCaller)
	c.path = path
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("replay cache directory: %w", err)
	}
	if err := c.load(now); err != nil {
		return nil, err
	}
	if err := c.compact(); err != nil {
		return nil, err
	}
	return c, nil
}

// load reads "until hexkey caller" lines.
func (c *replayCache) load(now time.Time) error {
	f, err := os.Open(c.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("replay cache: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		until, key, caller, ok := parseReplayLine(sc.Text())
		if !ok || until <= now.UnixNano() {
			continue
		}
		if _, dup := c.seen[key]; !dup {
			c.insert(key, until, caller)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("replay cache %s: %w", c.path, err)
	}
	return nil
}

func parseReplayLine(line string) (until int64, key replayKey, caller string, ok bool) {
	f := strings.SplitN(line, " ", 3)
	if len(f) != 3 || f[2] == "" {
		return 0, key, "", false
	}
	until, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, key, "", false
	}
	b, err := hex.DecodeString(f[1])
	if err != nil || len(b) != len(key) {
		return 0, key, "", false
	}
	copy(key[:], b)
	return until, key, f[2], true
}

func (c *replayCache) insert(key replayKey, until int64, caller string) {
	cc := c.callers[caller]
	if cc == nil {
		cc = &callerCount{name: caller}
		c.callers[caller] = cc
	}
	cc.n++
	c.seen[key] = replayEntry{until: until, c: cc}
}

func (c *replayCache) remove(key replayKey, e replayEntry) {
	delete(c.seen, key)
	if e.c.n--; e.c.n <= 0 {
		delete(c.callers, e.c.name)
	}
}

// compact rewrites the file with the live entries only, atomically.
func (c *replayCache) compact() error {
	if c.path == "" {
		return nil
	}
	if c.f != nil {
		_ = c.w.Flush()
		_ = c.f.Close()
		c.f, c.w = nil, nil
	}
	tmp := c.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("replay cache: %w", err)
	}
	w := bufio.NewWriterSize(f, 64<<10)
	for k, e := range c.seen {
		writeReplayLine(w, k, e.until, e.c.name)
	}
	if err := errors.Join(w.Flush(), f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("replay cache: %w", err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		return fmt.Errorf("replay cache: %w", err)
	}
	if c.f, err = os.OpenFile(c.path, os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return fmt.Errorf("replay cache: %w", err)
	}
	c.w = bufio.NewWriterSize(c.f, 512)
	c.records = len(c.seen)
	return nil
}

func writeReplayLine(w *bufio.Writer, k replayKey, until int64, caller string) {
	var buf [20]byte
	w.Write(strconv.AppendInt(buf[:0], until, 10))
	w.WriteByte(' ')
	var hx [32]byte
	hex.Encode(hx[:], k[:])
	w.Write(hx[:])
	w.WriteByte(' ')
	w.WriteString(caller)
	w.WriteByte('\n')
}

// firstSeen records caller's id until forget. It returns nil for a new id,
// errReplayed for one already seen, errCallerFull or errCacheFull when the id cannot be
// remembered, or the error of writing it to the file; only nil lets the
// request through.
func (c *replayCache) firstSeen(caller, id string, now, forget time.Time) error {
	key := keyOf(caller, id)
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.After(c.nextSweep) {
		// Sweep at most once a second: amortised O(1) per request.
		c.sweep(now)
		c.nextSweep = now.Add(time.Second)
	}
	if e, ok := c.seen[key]; ok {
		if now.UnixNano() < e.until {
			return errReplayed
		}
		c.remove(key, e)
	}
	if cc := c.callers[caller]; cc != nil && cc.n >= c.maxPerCaller {
		return errCallerFull
	}
	if len(c.seen) >= c.maxEntries {
		return errCacheFull
	}
	if c.path != "" && c.w == nil {
		f, err := os.OpenFile(c.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("replay cache: %w", err)
		}
		c.f, c.w = f, bufio.NewWriterSize(f, 512)
		// End a line a failed write may have left torn, so the next one
		// is read back whole.
		c.w.WriteByte('\n')
	}
	if c.w != nil {
		// Written before the request may run: if the write fails the
		// request is refused, so nothing runs that a restart could re-accept.
		writeReplayLine(c.w, key, forget.UnixNano(), caller)
		if err := c.w.Flush(); err != nil {
			// bufio keeps its error: reopen on the next request.
			_ = c.f.Close()
			c.f, c.w = nil, nil
			return fmt.Errorf("replay cache %s: %w", c.path, err)
		}
		c.records++
	}
	c.insert(key, forget.UnixNano(), caller)
	return nil
}

// sweep forgets expired ids, and rewrites the file when most of its lines
// are dead, so it stays within about twice the live entries.
func (c *replayCache) sweep(now time.Time) {
	n := now.UnixNano()
	for k, e := range c.seen {
		if n >= e.until {
			c.remove(k, e)
		}
	}
	if c.f != nil && c.records > 2*len(c.seen)+4096 {
		// On failure the file is closed; firstSeen reopens it for
		// appending, or refuses requests while it cannot.
		_ = c.compact()
	}
}

func (c *replayCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// close flushes and closes the file.
func (c *replayCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return nil
	}
	err := errors.Join(c.w.Flush(), c.f.Close())
	c.f, c.w = nil, nil
	return err
}
