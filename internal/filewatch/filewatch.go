// Package filewatch tells a daemon when files it depends on (facts,
// revocation list, certificate and key) may have changed, without waking it
// every second to ask: inotify (through fsnotify) reports changes as they
// happen, and a slow poll remains as a safety net for what events miss.
//
// It only signals; callers compare what they last loaded (modification
// time, size, inode) and reload if it differs, as they did when they polled,
// so a spurious signal costs a stat and a missed event costs at most one
// poll interval.
package filewatch

import (
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
// is collected before the caller is told once.
const settle = 20 * time.Millisecond

// Watcher signals on C when a watched file may have changed.
type Watcher struct {
	// C receives a value once watching has begun (so that a change made
	// before can be noticed), after events for a watched file settle, and
	// at every poll. It holds one pending signal; signals never block.
	C <-chan struct{}

	c     chan struct{}
	paths []string
	poll  time.Duration
	fsw   *fsnotify.Watcher // nil: events unavailable, polling only
	dirs  map[string]bool   // directories being watched
	names map[string]bool   // base names that matter, per any watched directory
	stop  chan struct{}
	wg    sync.WaitGroup
}

// New watches paths (files that may not exist yet) and polls every poll.
// Stop releases it.
func New(poll time.Duration, paths ...string) *Watcher {
	c := make(chan struct{}, 1)
	w := &Watcher{C: c, c: c, paths: paths, poll: poll, dirs: map[string]bool{}, names: map[string]bool{}, stop: make(chan struct{})}
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
// tried again at every poll.
func (w *Watcher) addDirs() {
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
				settled.Reset(settle)
			}
		case _, ok := <-errs:
			if !ok {
				errs = nil
			}
			// An overflow or a removed directory: the next poll re-checks
			// the files and re-adds what can be watched.
		case <-settled.C:
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
	base := filepath.Base(name)
	return w.names[base] || strings.HasPrefix(base, "..")
}

func (w *Watcher) signal() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}
