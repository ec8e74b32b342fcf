package external

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/marionette/mco/agent"
)

// Loader discovers external agents and reloads them when their files change.
//
// Changes are noticed with fsnotify (inotify on Linux), so a new agent is live
// within the debounce delay without polling every file every second. Events
// are only a trigger: after the debounce the loader compares a fingerprint
// (name, size, mode, mtime) of the agent files with the one it last loaded and
// reloads only if it differs, so editor temp files and unrelated files in a
// libdir cost a few stats, not a reload. A slow rescan (Options.Rescan) covers
// what inotify cannot see, and is the only mechanism if inotify is unavailable.
type Loader struct {
	opts Options

	mu   sync.Mutex
	last []stamp // fingerprint of the files behind the last Load
}

// NewLoader returns a loader for the options' libdirs. Options are copied; the
// daemon's PATH is read here, once.
func NewLoader(opts Options) *Loader {
	return &Loader{opts: opts.withDefaults()}
}

// Load discovers every external agent in the libdirs, sorted by name. Each
// agent that cannot be loaded (bad DDL, name mismatch, missing or
// non-executable program) yields one error naming its file and is left out;
// the others are returned.
func (l *Loader) Load() ([]*agent.Agent, []error) {
	// Fingerprint before reading, so a change made during the read is seen as a
	// difference by the next check rather than lost.
	snap := snapshot(l.opts.LibDirs)
	agents, errs := discover(l.opts)
	l.mu.Lock()
	l.last = snap
	l.mu.Unlock()
	return agents, errs
}

// Run watches the libdirs until ctx ends and calls onChange with the complete
// new set of agents whenever a DDL or executable is added, changed or removed
// (load errors are logged). It also reports a change made between the
// caller's Load and the start of Run. onChange runs on Run's goroutine.
func (l *Loader) Run(ctx context.Context, onChange func([]*agent.Agent)) {
	var events <-chan fsnotify.Event
	var errs <-chan error
	w, err := fsnotify.NewWatcher()
	if err != nil {
		l.opts.Logger.Warn("cannot watch external agent directories; falling back to rescanning", "every", l.opts.Rescan, "error", err)
	} else {
		defer w.Close()
		events, errs = w.Events, w.Errors
		l.syncWatches(w)
	}

	rescan := time.NewTicker(l.opts.Rescan)
	defer rescan.Stop()
	debounce := time.NewTimer(0) // check at once for changes since Load
	defer debounce.Stop()

	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			debounce.Reset(l.opts.Debounce)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			l.opts.Logger.Warn("watching external agents", "error", err)
		case <-rescan.C:
			l.reloadIfChanged(onChange)
		case <-debounce.C:
			if w != nil {
				l.syncWatches(w)
			}
			l.reloadIfChanged(onChange)
		}
	}
}

// reloadIfChanged reloads and calls onChange when the files differ from those
// behind the last Load.
func (l *Loader) reloadIfChanged(onChange func([]*agent.Agent)) {
	snap := snapshot(l.opts.LibDirs)
	l.mu.Lock()
	same := slices.Equal(snap, l.last)
	l.mu.Unlock()
	if same {
		return
	}
	agents, errs := l.Load()
	for _, err := range errs {
		l.opts.Logger.Error("loading external agent", "error", err)
	}
	onChange(agents)
}

// syncWatches watches each libdir (to see agent/ appear), each agent dir
// (agent/ and mcollective/agent/) and each per-platform executable dir below
// it, and forgets dirs that are gone. What is watched comes from the watcher
// itself: inotify drops the watch of a removed dir, so a dir removed and
// created again must be watched anew.
func (l *Loader) syncWatches(w *fsnotify.Watcher) {
	want := map[string]bool{}
	for _, libdir := range l.opts.LibDirs {
		want[libdir] = true
		want[filepath.Join(libdir, "mcollective")] = true // to see mcollective/agent appear
	}
	for _, agentDir := range agentDirs(l.opts.LibDirs) {
		want[agentDir] = true
		entries, _ := os.ReadDir(agentDir)
		for _, e := range entries {
			if e.IsDir() {
				want[filepath.Join(agentDir, e.Name())] = true
			}
		}
	}
	watched := map[string]bool{}
	for _, dir := range w.WatchList() {
		watched[dir] = true
		if !want[dir] {
			_ = w.Remove(dir) // fails when the dir is already gone, which is fine
		}
	}
	for dir := range want {
		if !watched[dir] {
			// A dir that does not exist yet fails here and is picked up by a
			// later sync, when an event in its parent or the rescan
			// triggers one.
			_ = w.Add(dir)
		}
	}
}

// stamp is what the loader remembers of one file to notice changes.
type stamp struct {
	path  string
	size  int64
	mode  os.FileMode
	mtime int64 // unix nanoseconds
	owner int   // uid: a chown can make a file untrusted (checkTrusted)
}

// snapshot fingerprints everything in each agent dir and one level below
// (per-platform executables). Symlinks are followed, so replacing a linked
// executable counts as a change. Unreadable entries are skipped: the reload
// that follows reports them properly.
func snapshot(libdirs []string) []stamp {
	var out []stamp
	var add func(dir string, depth int)
	add = func(dir string, depth int) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			st, err := os.Stat(p)
			if err != nil {
				continue
			}
			out = append(out, stamp{path: p, size: st.Size(), mode: st.Mode(), mtime: st.ModTime().UnixNano(), owner: ownerOf(st)})
			if st.IsDir() && depth == 0 {
				add(p, 1)
			}
		}
	}
	for _, dir := range agentDirs(libdirs) {
		add(dir, 0)
	}
	return out
}
