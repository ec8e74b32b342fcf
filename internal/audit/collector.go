package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
)

// Collector stores the audit lines nodes publish, one file per node
// (DIR/<identity>.log, the node's own line bytes, so each file verifies like
// the node's local log) and checks each node's chain as lines arrive.
//
// A broken link (a lost, edited, replayed or reordered line, or a node whose
// log was reset) is logged and counted, and the line is stored anyway: the
// central copy must keep whatever the node sent. Collection that starts after
// a node already had lines flags that node's first line once.
type Collector struct {
	dir    string
	logger *slog.Logger

	mu       sync.Mutex
	nodes    map[string]*nodeState
	rejected uint64
}

type nodeState struct {
	c     chain
	stats NodeStats
}

// NodeStats counts what a Collector did with one node's lines since it started.
type NodeStats struct {
	Records uint64 // lines stored
	Broken  uint64 // of which broke the node's chain
}

// CollectorStats is a snapshot of a Collector's counters.
type CollectorStats struct {
	Nodes    map[string]NodeStats // by identity
	Rejected uint64               // lines not stored: bad identity, not one JSON line, write failure
}

// NewCollector creates dir if needed and resumes each node's chain from the
// last line of its existing file. logger receives broken links and rejected
// lines; nil means slog.Default().
func NewCollector(dir string, logger *slog.Logger) (*Collector, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit collector: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, fmt.Errorf("audit collector: %w", err)
	}
	col := &Collector{dir: dir, logger: logger, nodes: make(map[string]*nodeState, len(files))}
	for _, path := range files {
		identity := strings.TrimSuffix(filepath.Base(path), ".log")
		c, err := col.resume(path)
		if err != nil {
			return nil, fmt.Errorf("audit collector %s: %w", path, err)
		}
		col.nodes[identity] = &nodeState{c: c}
	}
	return col, nil
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
		st = &nodeState{}
		col.nodes[identity] = st
	}
	before := st.c
	seq, reason := st.c.link(line)
	if err := col.store(identity, line); err != nil {
		// The file lacks this line, so the next one must show a gap.
		st.c = before
		return err
	}
	st.stats.Records++
	if reason != "" {
		st.stats.Broken++
		col.logger.Warn("audit chain broken", "node", identity, "seq", seq, "reason", reason)
	}
	return nil
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
		s.Nodes[id] = st.stats
	}
	return s
}

// Subscribe feeds every audit line published in collective
// (<collective>.audit.<identity>) to Handle. Lines Handle refuses are logged.
// NATS delivers one subscription's messages in order, which the per-node chain
// check relies on; a slow collector that overflows the subscription's pending
// limits loses lines, and those show up as broken links.
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
