package registration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/marionette/mco/filter"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/protocol"
)

// DefaultMaxAge is how long a node that announces only at start and on
// change (no interval) may stay quiet before it counts as silent.
const DefaultMaxAge = 10 * time.Minute

// MaxFutureSkew is how far in the future of the collector's clock an
// announcement may be dated. Later ones are refused: stored, they would make
// every honest announcement after them look like a replayed old one.
const MaxFutureSkew = 5 * time.Minute

// Record is one node's latest announcement as the store keeps it.
type Record struct {
	protocol.Registration
	// LastSeen is when the collector received it.
	LastSeen time.Time `json:"last_seen"`
	// HeardOn lists the collectives the node's announcements actually
	// arrived on. The broker only lets a node publish in its collectives, so
	// this, not the list the node claims, bounds where it belongs.
	HeardOn []string `json:"heard_on,omitempty"`
}

// MaxAge is how long the node may stay quiet before it counts as silent:
// three of its intervals, or def when it announces no interval.
func (r *Record) MaxAge(def time.Duration) time.Duration {
	if r.Interval > 0 {
		return 3 * time.Duration(r.Interval) * time.Second
	}
	return def
}

// Silent reports whether the node has not been heard of for longer than maxAge.
func (r *Record) Silent(now time.Time, maxAge time.Duration) bool {
	return now.Sub(r.LastSeen) > maxAge
}

// InCollective reports whether the node is in c: it says so, and its
// announcements were heard there.
func (r *Record) InCollective(c string) bool {
	return slices.Contains(r.Collectives, c) && slices.Contains(r.HeardOn, c)
}

// Node is the record as filters see it. Data plugins cannot run against a
// stored announcement: data function calls are unknown (see filter.Decide)
// and, under Match, false.
func (r *Record) Node() filter.Node { return recordNode{r} }

// ErrNoData is what data plugin queries return for stored announcements.
// It wraps filter.ErrUnknown: inventory discovery treats such a call as
// unknown and leaves the decision to the node.
var ErrNoData = fmt.Errorf("data plugins cannot be evaluated from the registration store: %w", filter.ErrUnknown)

type recordNode struct{ r *Record }

func (n recordNode) Identity() string             { return n.r.Identity }
func (n recordNode) Fact(path string) (any, bool) { return filter.Lookup(n.r.Facts, path) }
func (n recordNode) Classes() []string            { return n.r.Classes }
func (n recordNode) Agents() []string             { return n.r.Agents }
func (recordNode) Data(context.Context, string, string) (map[string]any, error) {
	return nil, ErrNoData
}

// Store is a directory holding one <identity>.json per node.
type Store struct {
	Dir string
}

// path returns the file of a node, refusing identities that are not plain
// file names.
func (s Store) path(identity string) (string, error) {
	if err := ValidIdentity(identity); err != nil {
		return "", err
	}
	return filepath.Join(s.Dir, identity+".json"), nil
}

// Load reads one node's record; a missing node is an error wrapping
// fs.ErrNotExist.
func (s Store) Load(identity string) (*Record, error) {
	p, err := s.path(identity)
	if err != nil {
		return nil, err
	}
	return readRecord(p)
}

func readRecord(p string) (*Record, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return &r, nil
}

// Save writes a record atomically (temporary file, then rename), so readers
// never see half a file.
func (s Store) Save(r *Record) error {
	p, err := s.path(r.Identity)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding record of %s: %w", r.Identity, err)
	}
	// The temporary name starts with a dot, which no identity does, so List
	// never reads it and no node's file is ever mistaken for it.
	tmp, err := os.CreateTemp(s.Dir, "."+r.Identity+".*.tmp")
	if err != nil {
		return fmt.Errorf("registration store: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left to remove
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("registration store: %w", err)
	}
	return nil
}

// List reads every record, sorted by identity. Files that cannot be read are
// reported in problems and skipped, so one broken file does not hide the
// rest of the fleet; err is only for an unreadable directory.
func (s Store) List() (records []*Record, problems []error, err error) {
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, nil, fmt.Errorf("registration store: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		id, ok := strings.CutSuffix(name, ".json")
		if !ok || e.IsDir() || ValidIdentity(id) != nil {
			continue
		}
		r, err := readRecord(filepath.Join(s.Dir, name))
		if err != nil {
			problems = append(problems, err)
			continue
		}
		if r.Identity != id {
			problems = append(problems, fmt.Errorf("%s: holds identity %q, not %q", filepath.Join(s.Dir, name), r.Identity, id))
			continue
		}
		records = append(records, r)
	}
	sort.Slice(records, func(i, j int) bool { return records[i].Identity < records[j].Identity })
	return records, problems, nil
}

// CollectorStats counts what a collector did.
type CollectorStats struct {
	Stored, Rejected uint64
}

// Collector verifies announcements and stores the latest per node.
type Collector struct {
	store    Store
	verifier *security.Verifier
	now      func() time.Time

	// mu serialises load-compare-save: a node in two collectives arrives on
	// two subscriptions, whose callbacks run concurrently.
	mu               sync.Mutex
	stored, rejected atomic.Uint64
}

// NewCollector creates dir if needed and returns a collector storing there;
// now is the clock (nil: time.Now).
func NewCollector(dir string, v *security.Verifier, now func() time.Time) (*Collector, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("registration store: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &Collector{store: Store{Dir: dir}, verifier: v, now: now}, nil
}

// Handle verifies one message received on <collective>.registration.<subjectIdentity>
// and stores it unless it is older than what is stored already (a replay).
func (c *Collector) Handle(collective, subjectIdentity string, data []byte) (*Record, error) {
	r, err := c.handle(collective, subjectIdentity, data)
	if err != nil {
		c.rejected.Add(1)
		return nil, err
	}
	c.stored.Add(1)
	return r, nil
}

func (c *Collector) handle(collective, subjectIdentity string, data []byte) (*Record, error) {
	reg, err := Open(c.verifier, data)
	if err != nil {
		return nil, err
	}
	if reg.Identity != subjectIdentity {
		return nil, fmt.Errorf("%w: announcement of %q arrived on the subject of %q", ErrRejected, reg.Identity, subjectIdentity)
	}
	now := c.now()
	if created := reg.Created(); created.After(now.Add(MaxFutureSkew)) {
		return nil, fmt.Errorf("%w: announcement of %q is dated %s, in the future", ErrRejected, reg.Identity, created.Format(time.RFC3339))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rec := &Record{Registration: *reg, LastSeen: now, HeardOn: []string{collective}}
	if old, err := c.store.Load(reg.Identity); err == nil {
		if old.Time > reg.Time {
			return nil, fmt.Errorf("%w: announcement of %q dated %s is older than the stored one (%s)", ErrRejected,
				reg.Identity, reg.Created().Format(time.RFC3339Nano), old.Created().Format(time.RFC3339Nano))
		}
		// The same announcement arrives once per collective: keep where
		// else it was heard, as long as the node still claims it.
		for _, h := range old.HeardOn {
			if h != collective && slices.Contains(reg.Collectives, h) {
				rec.HeardOn = append(rec.HeardOn, h)
			}
		}
		slices.Sort(rec.HeardOn)
	}
	if err := c.store.Save(rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// Stats returns the collector's counters.
func (c *Collector) Stats() CollectorStats {
	return CollectorStats{Stored: c.stored.Load(), Rejected: c.rejected.Load()}
}
