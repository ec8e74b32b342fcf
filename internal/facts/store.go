package facts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/marionette/mco/internal/filewatch"
)

// Defaults for the zero values of the Options durations.
const (
	// DefaultCommandInterval is long because facter and ohai cost seconds
	// of CPU per run.
	DefaultCommandInterval = 5 * time.Minute
	// DefaultCommandTimeout bounds one command-source run.
	DefaultCommandTimeout = time.Minute
	// DefaultPollInterval is the safety-net poll of the files: changes are
	// seen at once through file system events (internal/filewatch); the poll
	// catches what events miss.
	DefaultPollInterval = filewatch.DefaultPoll
)

// Options configures a Store. The zero value is a store with no facts.
type Options struct {
	// Files are YAML or JSON facts files, merged in order: later files
	// override earlier ones, and all of them override command sources and
	// built-ins.
	Files []string
	// ClassesFile holds one class per line; empty means none. Classes
	// other components push (SetClasses) are added after it.
	ClassesFile string
	// Commands are argv lists run without a shell (e.g. {"facter", "-j"});
	// their output, a JSON object, is merged above built-ins and below
	// files, in the order given.
	Commands [][]string
	// CommandInterval is how often command sources and built-ins are
	// re-collected; zero means DefaultCommandInterval.
	CommandInterval time.Duration
	// CommandTimeout bounds one run of a command source, which is killed
	// with its process group when it expires; zero means
	// DefaultCommandTimeout.
	CommandTimeout time.Duration
	// PollInterval is how often Run checks the files for changes even
	// without a file system event; zero means DefaultPollInterval.
	PollInterval time.Duration
	// Version is reported as the mco_version built-in fact.
	Version string
	// Logger receives load failures; nil discards them.
	Logger *slog.Logger
	// Builtins enables the built-in facts (os, kernel, memory, ...).
	Builtins bool
}

// Snapshot is one consistent, immutable view of a node's facts and classes.
// Callers must not modify Facts, Classes or anything reachable from them.
type Snapshot struct {
	// Facts is the merged fact tree with JSON-compatible values.
	Facts map[string]any
	// Classes is the deduplicated class list in file order.
	Classes []string
	// Version starts at 1 and grows by one on each change of facts or
	// classes. Refreshing volatile facts (uptime_seconds, memory.free_mb)
	// alone is not a change.
	Version uint64

	changed chan struct{}
}

// Changed returns a channel closed when a newer version replaces this one.
func (s *Snapshot) Changed() <-chan struct{} { return s.changed }

// Store holds a node's facts and classes and keeps them current. Readers get
// the latest snapshot through an atomic pointer: they never lock and never
// touch the disk.
type Store struct {
	opts    Options
	log     *slog.Logger
	current atomic.Pointer[Snapshot]
	running atomic.Bool
	// reloads and reloadFailures count facts and classes file reads, the
	// first included (metrics: mco_fact_reloads_total).
	reloads, reloadFailures atomic.Uint64

	// mu serialises writers (the poller, the refresher, Refresh) over the
	// per-source state below; readers never take it.
	mu       sync.Mutex
	builtins map[string]any
	cmdOut   []map[string]any // last good output per command, nil until one succeeds
	watched  []*watchedFile   // facts files in merge order, then the classes file
	// pushed are the classes other components set (SetClasses), by
	// source, in the order the sources first appeared.
	pushed []pushedClasses
}

// pushedClasses is one source's classes set through SetClasses.
type pushedClasses struct {
	source  string
	classes []string
}

// watchedFile is one facts or classes file with its last good content.
type watchedFile struct {
	path      string
	isClasses bool
	sig       fileSig
	facts     map[string]any
	classes   []string
}

// fileSig is what polling compares to notice a change. Stat follows
// symlinks, so a replaced symlink target (as Kubernetes config maps do)
// counts too. Mode is included so that fixing permissions triggers a reload.
// An in-place rewrite of the same size within one mtime tick goes unnoticed
// until the next change; with nanosecond mtimes (ext4, xfs, tmpfs) that
// cannot happen in practice, and tools replace files by rename anyway.
type fileSig struct {
	exists  bool
	modTime int64
	size    int64
	mode    fs.FileMode
}

func statSig(path string) fileSig {
	fi, err := os.Stat(path)
	if err != nil {
		return fileSig{}
	}
	return fileSig{exists: true, modTime: fi.ModTime().UnixNano(), size: fi.Size(), mode: fi.Mode()}
}

// New builds a store and loads the built-ins, files and classes once.
// Loading is lenient so that a node still comes up: a missing or broken file
// is logged and contributes nothing until it becomes valid. Command sources
// first run when Run starts, so New never blocks on facter. Use Refresh to
// get every load error at once (e.g. to report them all before serving). New only
// fails on invalid options.
func New(opts Options) (*Store, error) {
	if opts.CommandInterval < 0 || opts.CommandTimeout < 0 || opts.PollInterval < 0 {
		return nil, errors.New("facts: intervals and timeouts must not be negative")
	}
	opts.CommandInterval = orDefault(opts.CommandInterval, DefaultCommandInterval)
	opts.CommandTimeout = orDefault(opts.CommandTimeout, DefaultCommandTimeout)
	opts.PollInterval = orDefault(opts.PollInterval, DefaultPollInterval)
	for i, argv := range opts.Commands {
		if len(argv) == 0 || argv[0] == "" {
			return nil, fmt.Errorf("facts: command source %d is empty", i+1)
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	s := &Store{opts: opts, log: log, cmdOut: make([]map[string]any, len(opts.Commands))}
	for i, f := range opts.Files {
		if f == "" {
			return nil, fmt.Errorf("facts: facts file %d has an empty path", i+1)
		}
		s.watched = append(s.watched, &watchedFile{path: f})
	}
	if opts.ClassesFile != "" {
		s.watched = append(s.watched, &watchedFile{path: opts.ClassesFile, isClasses: true})
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if opts.Builtins {
		s.builtins = collectBuiltins(opts.Version, log)
	}
	for _, w := range s.watched {
		_ = s.reload(w) // logged by reload
	}
	s.publish()
	return s, nil
}

// orDefault maps an unset duration to its default.
func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Snapshot returns the current snapshot. To wait for the next change
// without missing one, take the snapshot first, use it, then wait on its
// Changed channel.
func (s *Store) Snapshot() *Snapshot { return s.current.Load() }

// Facts returns the current merged facts; callers must not modify them.
func (s *Store) Facts() map[string]any { return s.Snapshot().Facts }

// Fact looks up one fact by dotted path (see Lookup).
func (s *Store) Fact(path string) (any, bool) { return Lookup(s.Facts(), path) }

// Classes returns the current classes; callers must not modify them.
func (s *Store) Classes() []string { return s.Snapshot().Classes }

// Reloads returns how many times a facts or classes file was read since
// the store started, and how many of those reads failed.
func (s *Store) Reloads() (total, failed uint64) {
	return s.reloads.Load(), s.reloadFailures.Load()
}

// Version returns the current snapshot's version (see Snapshot.Version).
func (s *Store) Version() uint64 { return s.Snapshot().Version }

// Changed returns a channel closed at the next change after this call's
// snapshot; call it again after it fires.
func (s *Store) Changed() <-chan struct{} { return s.Snapshot().changed }

// SetClasses sets the classes a named source contributes (Puppet's
// classes.txt located from Puppet's settings, a Chef run list), replacing
// that source's previous ones; nil removes them. They are merged after the
// classes file, in the order the sources were first set, repeats dropped.
// Components that learn classes from their own tools push them here, so
// that filters, policies and registration see them like any other class.
func (s *Store) SetClasses(source string, classes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	classes = slices.Clone(classes)
	for i := range s.pushed {
		if s.pushed[i].source == source {
			s.pushed[i].classes = classes
			s.publish()
			return
		}
	}
	s.pushed = append(s.pushed, pushedClasses{source: source, classes: classes})
	s.publish()
}

// Recollect re-runs the built-ins and command sources now, as on the
// interval: after a Puppet or Chef run, whose changes facter and ohai
// report. Files are not re-read (their watcher does that); failures are
// logged and keep the last good output.
func (s *Store) Recollect(ctx context.Context) {
	_ = s.refreshSources(ctx, false)
}

// Refresh re-collects everything now: built-ins, every command source and
// every file, whether changed or not. Failures keep the last good content,
// are logged, and are returned joined, which makes Refresh the strict check
// for a node's configuration; a missing file is an error here.
func (s *Store) Refresh(ctx context.Context) error {
	return s.refreshSources(ctx, true)
}

// Run keeps the store current until ctx is cancelled: it reloads a file when
// a file system event says it may have changed (or at the latest every
// PollInterval) and re-collects built-ins and command sources every
// CommandInterval, starting with the commands at once. It returns nil after
// cancellation, once every goroutine and command it started has finished.
//
// Events are only a hint: a file is reloaded when its stat signature
// differs from the last load's, which covers files replaced by rename, files
// that do not exist yet and symlinks swapped as a whole; an idle node wakes
// for none of this.
func (s *Store) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("facts: Run is already running on this store")
	}
	defer s.running.Store(false)

	var wg sync.WaitGroup
	if s.opts.Builtins || len(s.opts.Commands) > 0 {
		wg.Go(func() { s.refreshLoop(ctx) })
	}
	if len(s.watched) > 0 {
		wg.Go(func() { s.pollLoop(ctx) })
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}

func (s *Store) refreshLoop(ctx context.Context) {
	if len(s.opts.Commands) > 0 {
		_ = s.refreshSources(ctx, false) // logged inside
	}
	t := time.NewTicker(s.opts.CommandInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = s.refreshSources(ctx, false)
		}
	}
}

func (s *Store) pollLoop(ctx context.Context) {
	paths := make([]string, len(s.watched))
	for i, w := range s.watched {
		paths[i] = w.path
	}
	w := filewatch.New(s.opts.PollInterval, paths...)
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.C:
			s.poll()
		}
	}
}

// poll reloads the files whose stat signature changed since their last load.
func (s *Store) poll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, w := range s.watched {
		if statSig(w.path) != w.sig {
			_ = s.reload(w)
			changed = true
		}
	}
	if changed {
		s.publish()
	}
}

// refreshSources re-collects built-ins and command sources (outside the lock,
// since commands may take seconds), and with rereadFiles every file too.
func (s *Store) refreshSources(ctx context.Context, rereadFiles bool) error {
	var builtins map[string]any
	if s.opts.Builtins {
		builtins = collectBuiltins(s.opts.Version, s.log)
	}
	var errs []error
	outs := make([]map[string]any, len(s.opts.Commands))
	for i, argv := range s.opts.Commands {
		out, err := runCommand(ctx, argv, s.opts.CommandTimeout)
		if ctx.Err() != nil {
			return ctx.Err() // shutting down: nothing to report or publish
		}
		if err != nil {
			s.log.Warn("fact command failed; keeping its last good output", "error", err)
			errs = append(errs, err)
			continue
		}
		outs[i] = out
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if builtins != nil {
		s.builtins = builtins
	}
	for i, out := range outs {
		if out != nil {
			s.cmdOut[i] = out
		}
	}
	if rereadFiles {
		for _, w := range s.watched {
			if err := s.reload(w); err != nil {
				errs = append(errs, err)
			}
		}
	}
	s.publish()
	return errors.Join(errs...)
}

// reload reads one file, keeping its last good content when it is broken
// and dropping it when the file is gone. Callers hold s.mu.
func (s *Store) reload(w *watchedFile) error {
	w.sig = statSig(w.path)
	var err error
	defer func() {
		s.reloads.Add(1)
		if err != nil {
			s.reloadFailures.Add(1)
		}
	}()
	if w.isClasses {
		var c []string
		if c, err = loadClasses(w.path); err == nil {
			w.classes = c
		}
	} else {
		var m map[string]any
		if m, err = LoadFile(w.path); err == nil {
			w.facts = m
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		// Deleting a file is deliberate: its content should go with it.
		w.facts, w.classes = nil, nil
		s.log.Warn("facts source missing; it contributes nothing until it appears", "file", w.path)
	default:
		s.log.Warn("facts source not loaded; keeping its last good content", "file", w.path, "error", err)
	}
	return err
}

// publish merges the layers into a new snapshot. Callers hold s.mu.
func (s *Store) publish() {
	merged := map[string]any{}
	if s.builtins != nil {
		merged = merge(merged, s.builtins)
	}
	for _, out := range s.cmdOut {
		if out != nil {
			merged = merge(merged, out)
		}
	}
	classes := []string{}
	for _, w := range s.watched {
		switch {
		case w.isClasses && w.classes != nil:
			classes = w.classes
		case w.facts != nil:
			merged = merge(merged, w.facts)
		}
	}
	if len(s.pushed) > 0 {
		seen := make(map[string]bool, len(classes))
		all := slices.Clone(classes)
		for _, c := range classes {
			seen[c] = true
		}
		for _, p := range s.pushed {
			for _, c := range p.classes {
				if !seen[c] {
					seen[c] = true
					all = append(all, c)
				}
			}
		}
		classes = all
	}

	prev := s.current.Load()
	if prev != nil && slices.Equal(prev.Classes, classes) && sameIgnoringVolatile(prev.Facts, merged) {
		// Same version: fresh volatile values, no change notification.
		s.current.Store(&Snapshot{Facts: merged, Classes: classes, Version: prev.Version, changed: prev.changed})
		return
	}
	next := &Snapshot{Facts: merged, Classes: classes, Version: 1, changed: make(chan struct{})}
	if prev != nil {
		next.Version = prev.Version + 1
	}
	s.current.Store(next)
	if prev != nil {
		close(prev.changed)
	}
}
