package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Collector stores the audit lines nodes publish, one file per node
// (DIR/<identity>.log, the node's own line bytes, so each file verifies like
// the node's local log) and checks each node's chain as lines arrive.
//
// With CollectorOptions.Fetch set, a gap (a line whose seq is past the next
// one expected, as after a broker restart or when collection starts late) is
// repaired: the node's later lines wait in memory while the missing ones are
// fetched from the node's own log, checked against the chain and written in
// order. Lines that arrive twice (fetched, then delivered live) are skipped.
//
// A broken link that cannot be repaired (a lost, edited, replayed or
// reordered line, a node whose log was reset, or a node that does not hand
// over the missing lines) is logged and counted, and the line is stored
// anyway: the central copy must keep whatever the node sent.
type Collector struct {
	dir    string
	logger *slog.Logger
	opts   CollectorOptions
	ctx    context.Context // ends fetches on Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // running backfills

	mu       sync.Mutex
	nodes    map[string]*nodeState
	rejected uint64
}

// CollectorOptions tunes a Collector. The zero value stores lines and flags
// gaps without repairing them.
type CollectorOptions struct {
	// Logger receives broken links, repairs and rejected lines; nil means
	// slog.Default().
	Logger *slog.Logger
	// Fetch returns the node's audit lines with seq from..to, in order
	// (the audit agent's lines action). It may return only the first part
	// of the range (a capped reply); the collector then asks for the rest.
	// nil disables gap repair.
	Fetch func(ctx context.Context, node string, from, to uint64) ([][]byte, error)
	// Retry are the waits before each new fetch attempt after one failed
	// or returned lines that do not chain; when they run out the gap is
	// stored flagged. nil means DefaultRetry.
	Retry []time.Duration
	// MaxPendingLines and MaxPendingBytes bound the lines one node may have
	// waiting for a repair (default 10,000 lines, 16 MiB); beyond them the
	// repair is abandoned and the gap stored flagged.
	MaxPendingLines int
	MaxPendingBytes int
	// OnStore, if set, is called with every line stored, in file order and
	// under the collector's lock (keep it quick); e.g. for `collect -v`.
	OnStore func(node string, line []byte)
}

// retryGrace is the time the last fetch attempt of a stalled repair gets.
const retryGrace = 5 * time.Second

// DefaultRetry is five fetch attempts over about half a minute: a repair that
// keeps failing gives up at most 35 s (the waits plus retryGrace) after its
// first failed attempt, however long each attempt would have waited.
var DefaultRetry = []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second}

// recentKeep is how many of a node's latest line hashes are kept to
// recognise a line delivered twice.
const recentKeep = 4096

type nodeState struct {
	c      chain
	stats  NodeStats
	recent map[uint64]string // seq -> hash of the latest stored lines

	// A repair in progress: pending holds the lines that arrived since the
	// gap, gen identifies the backfill goroutine that owns it.
	pending      [][]byte
	pendingBytes int
	gen          uint64
}

// NodeStats counts what a Collector did with one node's lines since it started.
type NodeStats struct {
	Records    uint64 // lines stored
	Broken     uint64 // of which broke the node's chain
	Backfilled uint64 // of which were fetched from the node to fill a gap
	Duplicates uint64 // lines received again and skipped
	Pending    int    // lines waiting for a gap to be filled
}

// CollectorStats is a snapshot of a Collector's counters.
type CollectorStats struct {
	Nodes    map[string]NodeStats // by identity
	Rejected uint64               // lines not stored: bad identity, not one JSON line, write failure
}

// NewCollector is NewCollectorWith without gap repair.
func NewCollector(dir string, logger *slog.Logger) (*Collector, error) {
	return NewCollectorWith(dir, CollectorOptions{Logger: logger})
}

// NewCollectorWith creates dir if needed and resumes each node's chain from
// the last line of its existing file. Close it to stop repairs in progress.
func NewCollectorWith(dir string, opts CollectorOptions) (*Collector, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Retry == nil {
		opts.Retry = DefaultRetry
	}
	if opts.MaxPendingLines <= 0 {
		opts.MaxPendingLines = 10_000
	}
	if opts.MaxPendingBytes <= 0 {
		opts.MaxPendingBytes = 16 << 20
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit collector: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, fmt.Errorf("audit collector: %w", err)
	}
	col := &Collector{dir: dir, logger: opts.Logger, opts: opts, nodes: make(map[string]*nodeState, len(files))}
	col.ctx, col.cancel = context.WithCancel(context.Background())
	for _, path := range files {
		identity := strings.TrimSuffix(filepath.Base(path), ".log")
		c, err := col.resume(path)
		if err != nil {
			col.cancel()
			return nil, fmt.Errorf("audit collector %s: %w", path, err)
		}
		st := &nodeState{c: c, recent: map[uint64]string{}}
		if c.seq > 0 {
			st.recent[c.seq] = c.hash
		}
		col.nodes[identity] = st
	}
	return col, nil
}

// Close stops the repairs in progress and waits for them; their waiting lines
// are stored with the gap flagged, so nothing received is dropped.
func (col *Collector) Close() {
	col.mu.Lock()
	col.cancel() // under the lock: take starts no backfill after this
	col.mu.Unlock()
	col.wg.Wait()
}

// resume reads a collected file's chain head. A file ending in a partial line
// (a crash mid-write) gets its line terminated, and the chain is left so the
// next line from that node is flagged rather than refused.
func (col *Collector) resume(path string) (chain, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return chain{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return chain{}, err
	}
	line, torn, err := lastLine(f, st.Size())
	if err != nil || line == nil {
		return chain{}, err
	}
	if torn {
		col.logger.Warn("audit collector: file ends in a partial line; terminating it", "file", path)
		if _, err := f.Write([]byte{'\n'}); err != nil {
			return chain{}, err
		}
	}
	c := chain{hash: hashLine(line)}
	var h header
	if json.Unmarshal(line, &h) == nil && h.Seq != nil && !torn {
		c.seq = *h.Seq
	}
	return c, nil
}

// Handle stores one audit line published by the node identity (the last
// tokens of its subject) and checks it against that node's chain. It returns
// an error, and stores nothing, only when the line cannot be stored safely:
// an identity that is not a plain file name, a line that is not a single JSON
// value, or a failed write. A broken chain is not an error.
func (col *Collector) Handle(identity string, line []byte) error {
	err := col.handle(identity, line)
	if err != nil {
		col.mu.Lock()
		col.rejected++
		col.mu.Unlock()
	}
	return err
}

func (col *Collector) handle(identity string, line []byte) error {
	if err := checkIdentity(identity); err != nil {
		return err
	}
	line = bytes.TrimSuffix(line, []byte{'\n'})
	if bytes.IndexByte(line, '\n') >= 0 || !json.Valid(line) {
		return fmt.Errorf("audit collector: line from %q is not one JSON line", identity)
	}

	col.mu.Lock()
	defer col.mu.Unlock()
	st := col.nodes[identity]
	if st == nil {
		st = &nodeState{recent: map[uint64]string{}}
		col.nodes[identity] = st
	}
	return col.take(identity, st, bytes.Clone(line), true)
}

// take stores, skips or holds back one line; col.mu is held. A line that
// leaves a gap starts a repair when repair is set and Fetch is available.
func (col *Collector) take(identity string, st *nodeState, line []byte, repair bool) error {
	if st.pending != nil {
		st.pending = append(st.pending, line)
		st.pendingBytes += len(line)
		if len(st.pending) > col.opts.MaxPendingLines || st.pendingBytes > col.opts.MaxPendingBytes {
			col.giveUp(identity, st, fmt.Errorf("more than %d lines or %d bytes arrived while waiting",
				col.opts.MaxPendingLines, col.opts.MaxPendingBytes))
		}
		return nil
	}
	var h header
	if json.Unmarshal(line, &h) == nil && h.Seq != nil {
		seq := *h.Seq
		if seq <= st.c.seq && st.recent[seq] == hashLine(line) {
			st.stats.Duplicates++
			return nil
		}
		// A chain resumed from a torn file (seq 0 with a hash) cannot be
		// continued by fetched lines: leave it flagged.
		canRepair := st.c.seq > 0 || st.c.hash == ""
		if repair && col.opts.Fetch != nil && canRepair && seq > st.c.seq+1 && col.ctx.Err() == nil {
			st.gen++
			st.pending, st.pendingBytes = [][]byte{line}, len(line)
			col.logger.Info("audit gap: fetching the missing lines from the node", "node", identity, "from", st.c.seq+1, "to", seq-1)
			col.wg.Add(1)
			go col.backfill(identity, st.gen, seq-1)
			return nil
		}
	}
	return col.write(identity, st, line)
}

// write appends line to the node's file and advances its chain; col.mu is
// held.
func (col *Collector) write(identity string, st *nodeState, line []byte) error {
	before := st.c
	seq, reason := st.c.link(line)
	if err := col.store(identity, line); err != nil {
		// The file lacks this line, so the next one must show a gap.
		st.c = before
		return err
	}
	st.stats.Records++
	st.remember(st.c.seq, st.c.hash)
	if reason != "" {
		st.stats.Broken++
		col.logger.Warn("audit chain broken", "node", identity, "seq", seq, "reason", reason)
	}
	if col.opts.OnStore != nil {
		col.opts.OnStore(identity, line)
	}
	return nil
}

// remember records a stored line's hash for duplicate detection, keeping
// only the latest ones.
func (st *nodeState) remember(seq uint64, hash string) {
	if len(st.recent) > 2*recentKeep {
		clear(st.recent)
	}
	st.recent[seq] = hash
	if seq > recentKeep {
		delete(st.recent, seq-recentKeep)
	}
}

// backfill fetches the node's lines up to seq to, page by page, until the
// chain reaches to; then the waiting lines are stored. It gives up, storing
// them with the gap flagged, when the retries run out or the repair was
// abandoned (gen changed).
func (col *Collector) backfill(identity string, gen, to uint64) {
	defer col.wg.Done()
	failures := 0
	// giveUpAt bounds the retries of one stalled repair, including the time
	// the attempts themselves take (each fetch is cut off at it): the sum
	// of Retry after the first failure, not that plus every attempt's own
	// timeout. Zero while the repair is making progress.
	var giveUpAt time.Time
	for {
		col.mu.Lock()
		st := col.nodes[identity]
		if st.gen != gen {
			col.mu.Unlock()
			return
		}
		from := st.c.seq + 1
		if from > to {
			col.finish(identity, st)
			col.mu.Unlock()
			return
		}
		col.mu.Unlock()

		ctx, cancel := col.ctx, context.CancelFunc(func() {})
		if !giveUpAt.IsZero() {
			ctx, cancel = context.WithDeadline(col.ctx, giveUpAt)
		}
		lines, err := col.opts.Fetch(ctx, identity, from, to)
		cancel()
		if err == nil {
			col.mu.Lock()
			if st.gen != gen {
				col.mu.Unlock()
				return
			}
			var n int
			n, err = col.storeFetched(identity, st, lines, to)
			col.mu.Unlock()
			if n > 0 {
				failures = 0 // progress; a later page gets fresh retries
				giveUpAt = time.Time{}
				continue
			}
			if err == nil {
				err = fmt.Errorf("the node returned no line for seq %d..%d", from, to)
			}
		}
		if failures == 0 {
			// The last attempt itself gets retryGrace (or the last wait,
			// if shorter, so short test retries stay short).
			budget := retryGrace
			if n := len(col.opts.Retry); n > 0 {
				budget = min(retryGrace, col.opts.Retry[n-1])
			}
			for _, w := range col.opts.Retry {
				budget += w
			}
			giveUpAt = time.Now().Add(budget)
		}
		// Every attempt is made (an attempt past the deadline fails at
		// once), so the number of attempts does not depend on timing.
		if failures == len(col.opts.Retry) || col.ctx.Err() != nil {
			col.mu.Lock()
			if st.gen == gen {
				col.giveUp(identity, st, fmt.Errorf("after %d attempts: %w", failures+1, err))
			}
			col.mu.Unlock()
			return
		}
		wait := max(0, min(col.opts.Retry[failures], time.Until(giveUpAt)))
		failures++
		col.logger.Warn("audit gap: fetching missing lines failed; retrying", "node", identity,
			"from", from, "to", to, "err", err, "retry_in", wait)
		select {
		case <-time.After(wait):
		case <-col.ctx.Done():
		}
	}
}

// storeFetched writes the fetched lines that continue the chain, up to seq
// to; col.mu is held. It returns how many it wrote and, if it stopped early,
// why.
func (col *Collector) storeFetched(identity string, st *nodeState, lines [][]byte, to uint64) (int, error) {
	for i, line := range lines {
		line = bytes.TrimSuffix(line, []byte{'\n'})
		c := st.c
		seq, reason := c.link(line)
		switch {
		case bytes.IndexByte(line, '\n') >= 0:
			reason = "not one line"
		case reason == "" && seq > to:
			reason = fmt.Sprintf("seq %d is past the gap (up to %d)", seq, to)
		}
		if reason != "" {
			return i, fmt.Errorf("fetched line %d of %d does not continue the chain at seq %d: %s", i+1, len(lines), st.c.seq, reason)
		}
		if err := col.store(identity, line); err != nil {
			return i, err
		}
		st.c = c
		st.remember(c.seq, c.hash)
		st.stats.Records++
		st.stats.Backfilled++
		if col.opts.OnStore != nil {
			col.opts.OnStore(identity, line)
		}
	}
	return len(lines), nil
}

// finish ends a successful repair by storing the waiting lines, which may
// start another repair; col.mu is held.
func (col *Collector) finish(identity string, st *nodeState) {
	col.logger.Info("audit gap filled from the node's log", "node", identity, "head", st.c.seq)
	col.flush(identity, st, true)
}

// giveUp abandons a repair and stores the waiting lines with the gap
// flagged; col.mu is held.
func (col *Collector) giveUp(identity string, st *nodeState, why error) {
	st.gen++ // the backfill goroutine stops at its next look
	col.logger.Error("audit gap NOT filled: storing the later lines with the gap flagged",
		"node", identity, "missing_from", st.c.seq+1, "err", why)
	col.flush(identity, st, false)
}

// flush stores a node's waiting lines; col.mu is held.
func (col *Collector) flush(identity string, st *nodeState, repair bool) {
	pending := st.pending
	st.pending, st.pendingBytes = nil, 0
	for _, line := range pending {
		if err := col.take(identity, st, line, repair); err != nil {
			col.rejected++
			col.logger.Warn("audit line rejected", "node", identity, "err", err)
		}
	}
}

// store appends line to the node's file. Opening per line keeps the number of
// open files independent of the fleet size.
func (col *Collector) store(identity string, line []byte) error {
	path := filepath.Join(col.dir, identity+".log")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit collector: %w", err)
	}
	buf := make([]byte, 0, len(line)+1)
	buf = append(append(buf, line...), '\n')
	_, err = f.Write(buf)
	if err = errors.Join(err, f.Close()); err != nil {
		return fmt.Errorf("audit collector %s: %w", path, err)
	}
	return nil
}

// checkIdentity keeps a subject token from naming a file outside the
// collector's directory.
func checkIdentity(identity string) error {
	if identity == "" || strings.HasPrefix(identity, ".") || strings.ContainsAny(identity, "/\\\x00") {
		return fmt.Errorf("audit collector: identity %q is not usable as a file name", identity)
	}
	return nil
}

// Stats returns a snapshot of the collector's counters.
func (col *Collector) Stats() CollectorStats {
	col.mu.Lock()
	defer col.mu.Unlock()
	s := CollectorStats{Nodes: make(map[string]NodeStats, len(col.nodes)), Rejected: col.rejected}
	for id, st := range col.nodes {
		ns := st.stats
		ns.Pending = len(st.pending)
		s.Nodes[id] = ns
	}
	return s
}

// Subscribe feeds every audit line published in collective
// (<collective>.audit.<identity>) to Handle. Lines Handle refuses are logged.
// NATS delivers one subscription's messages in order, which the per-node chain
// check relies on; a slow collector that overflows the subscription's pending
// limits loses lines, and those show up as gaps (filled with
// CollectorOptions.Fetch, else flagged).
func (col *Collector) Subscribe(nc *nats.Conn, collective string) (*nats.Subscription, error) {
	prefix := collective + ".audit."
	sub, err := nc.Subscribe(prefix+">", func(m *nats.Msg) {
		identity := strings.TrimPrefix(m.Subject, prefix)
		if err := col.Handle(identity, m.Data); err != nil {
			col.logger.Warn("audit line rejected", "subject", m.Subject, "err", err)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("audit collector: subscribe %s>: %w", prefix, err)
	}
	return sub, nil
}
