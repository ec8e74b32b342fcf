package external

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/internal/filewatch"
)

// Loader discovers external agents and reloads them when their files change.
//
// Changes are noticed with internal/filewatch (fsnotify: inotify on Linux),
// like the daemon's other watched files, so a new agent is live within the
// debounce delay without polling every file every second. Events are only a
// trigger: after the debounce the loader compares a fingerprint (name, size,
// mode, mtime) of the agent files with the one it last loaded and reloads only
// if it differs, so editor temp files and unrelated files in a libdir cost a
// few stats, not a reload. A slow rescan (Options.Rescan, the watcher's safety
// poll) covers what inotify cannot see, and is the only mechanism if inotify
// is unavailable.
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
	// The watcher signals once at the start: a change since Load is seen.
	w := filewatch.NewDirs(l.opts.Rescan, l.opts.Debounce, l.watchDirs)
	defer w.Stop()
	if w.Polling() {
		l.opts.Logger.Warn("cannot watch external agent directories; falling back to rescanning", "every", l.opts.Rescan)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.C:
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

// watchDirs are the directories whose changes may change the agents: each
// libdir (to see agent/ appear), each agent dir (agent/ and
// mcollective/agent/) and each per-platform executable dir below it.
func (l *Loader) watchDirs() []string {
	var dirs []string
	for _, libdir := range l.opts.LibDirs {
		dirs = append(dirs, libdir, filepath.Join(libdir, "mcollective")) // to see mcollective/agent appear
	}
	for _, agentDir := range agentDirs(l.opts.LibDirs) {
		dirs = append(dirs, agentDir)
		entries, _ := os.ReadDir(agentDir)
		for _, e := range entries {
			if e.IsDir() {
				dirs = append(dirs, filepath.Join(agentDir, e.Name()))
			}
		}
	}
	return dirs
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
