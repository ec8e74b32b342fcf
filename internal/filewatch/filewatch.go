// Package filewatch tells a daemon when files it depends on (facts,
// revocation list, certificate and key) or directories it loads from
// (external agents) may have changed, without waking it
// every second to ask: inotify (through fsnotify) reports changes as they
// happen, and a slow poll remains as a safety net for what events miss.
//
// It only signals; callers compare what they last loaded (modification
// time, size, inode) and reload if it differs, as they did when they polled,
// so a spurious signal costs a stat and a missed event costs at most one
// poll interval.
package filewatch

import (
	"cmp"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultPoll is the safety-net poll of daemon file watchers: events report
// nearly every change at once; the poll catches what they cannot (a
// directory that did not exist yet, network file systems, inotify limits).
const DefaultPoll = 30 * time.Second

// settle is how long a burst of events (create, several writes, chmod)
// is collected before the caller is told once (New; NewDirs's default).
const settle = 20 * time.Millisecond

// Watcher signals on C when a watched file may have changed.
type Watcher struct {
	// C receives a value once watching has begun (so that a change made
	// before can be noticed), after events for a watched file settle, and
	// at every poll. It holds one pending signal; signals never block.
	C <-chan struct{}

	c      chan struct{}
	paths  []string
	list   func() []string // NewDirs: the directories to watch; nil for New
	poll   time.Duration
	settle time.Duration
	fsw    *fsnotify.Watcher // nil: events unavailable, polling only
	dirs   map[string]bool   // directories being watched (New)
	names  map[string]bool   // base names that matter, per any watched directory (New)
	stop   chan struct{}
	wg     sync.WaitGroup
}

// New watches paths (files that may not exist yet) and polls every poll.
// Stop releases it.
func New(poll time.Duration, paths ...string) *Watcher {
	return start(&Watcher{paths: paths, poll: poll, settle: settle, dirs: map[string]bool{}, names: map[string]bool{}})
}

// NewDirs watches directories rather than files: an entry created, written,
// removed, renamed or chmod-ed in any of them signals C once events have
// been quiet for quiet (0: 20 ms), and C also signals every poll. list
// returns the directories to watch; it is called again at each of those
// signals and polls, so that directories which appear (or are removed and
// created again) are watched from then on and those no longer listed are
// forgotten. Directories that do not exist are skipped until they do. list
// is called by NewDirs and then by the watcher's goroutine, never
// concurrently. Stop releases it.
func NewDirs(poll, quiet time.Duration, list func() []string) *Watcher {
	return start(&Watcher{list: list, poll: poll, settle: cmp.Or(quiet, settle)})
}

// Polling reports that file system events are unavailable (no inotify
// instance could be had): C then signals only at the start and every poll.
func (w *Watcher) Polling() bool { return w.fsw == nil }

func start(w *Watcher) *Watcher {
	w.c = make(chan struct{}, 1)
	w.C = w.c
	w.stop = make(chan struct{})
	if fsw, err := fsnotify.NewWatcher(); err == nil {
		w.fsw = fsw
		w.addDirs()
	}
	w.signal()
	w.wg.Add(1)
	go w.run()
	return w
}

// Stop ends the watcher; C receives nothing afterwards.
func (w *Watcher) Stop() {
	close(w.stop)
	w.wg.Wait()
	if w.fsw != nil {
		_ = w.fsw.Close()
	}
}

// addDirs watches the directory of every path, and of its symlink target:
// editors and configuration management replace a file by renaming another
// over it, which only an event on the directory reports, and a symlinked
// file changes where its target lives. Directories that do not exist yet are
// tried again at every poll. NewDirs's watchers sync with their list.
func (w *Watcher) addDirs() {
	if w.list != nil {
		w.syncDirs()
		return
	}
	for _, p := range w.paths {
		files := []string{p}
		if target, err := filepath.EvalSymlinks(p); err == nil && target != p {
			files = append(files, target)
		}
		for _, f := range files {
			w.names[filepath.Base(f)] = true
			dir := filepath.Dir(f)
			if w.dirs[dir] {
				continue
			}
			if err := w.fsw.Add(dir); err == nil {
				w.dirs[dir] = true
			}
		}
	}
}

// syncDirs watches every directory of the list and stops watching the
// others. What is watched comes from fsnotify itself: inotify drops the
// watch of a removed directory, so one removed and created again is added
// anew.
func (w *Watcher) syncDirs() {
	want := map[string]bool{}
	for _, dir := range w.list() {
		want[filepath.Clean(dir)] = true
	}
	for _, dir := range w.fsw.WatchList() {
		if !want[dir] {
			_ = w.fsw.Remove(dir) // fails when it is already gone, which is fine
		}
		delete(want, dir)
	}
	for dir := range want {
		// One that does not exist yet fails here and is added by a later
		// sync, after an event in its parent or at the poll.
		_ = w.fsw.Add(dir)
	}
}

func (w *Watcher) run() {
	defer w.wg.Done()
	tick := time.NewTicker(w.poll)
	defer tick.Stop()
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w.fsw != nil {
		events, errs = w.fsw.Events, w.fsw.Errors
	}
	settled := time.NewTimer(time.Hour)
	settled.Stop()
	defer settled.Stop()
	for {
		select {
		case <-w.stop:
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if w.matters(ev.Name) {
				settled.Reset(w.settle)
			}
		case _, ok := <-errs:
			if !ok {
				errs = nil
			}
			// An overflow or a removed directory: the next poll re-checks
			// the files and re-adds what can be watched.
		case <-settled.C:
			if w.fsw != nil && w.list != nil {
				w.syncDirs() // a new directory is watched before the caller looks
			}
			w.signal()
		case <-tick.C:
			if w.fsw != nil {
				w.addDirs()
			}
			w.signal()
		}
	}
}

// matters says whether an event's file is one of the watched ones. Names
// starting with ".." are the atomic-writer directories of Kubernetes
// volumes (..data is swapped as a whole), which change a file's content
// without an event on the file's own name.
func (w *Watcher) matters(name string) bool {
	if w.list != nil {
		return true // every entry of a watched directory
	}
	base := filepath.Base(name)
	return w.names[base] || strings.HasPrefix(base, "..")
}

func (w *Watcher) signal() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}
