package puppetagent

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/marionette/mco/internal/facts"
	"github.com/marionette/mco/internal/filewatch"
)

// Hooks receive what Watch learns from Puppet's files. Both are called from
// Watch's goroutine, one at a time, and should return quickly (hand long
// work such as running facter to another goroutine).
type Hooks struct {
	// Classes, when set, receives the classes listed in Puppet's classfile
	// (classes.txt) at start and whenever the file changes; nil when the
	// file does not exist (Puppet never ran).
	Classes func([]string)
	// RunFinished, when set, is called when last_run_summary.yaml changes
	// after Watch began: a Puppet run ended (one of our runonce jobs, the
	// Puppet daemon's own or a manual one).
	RunFinished func()
}

// Watch keeps the node current with Puppet's files until ctx ends. It reads
// Puppet's settings once at start (one `puppet config print`) and again only
// when puppet.conf changes, and watches puppet.conf, the classfile and the
// lastrunfile, resources.txt and the cached catalog through
// internal/filewatch, with poll as the safety net; the last two keep the
// resource action's managed-resource index current. A file that moves
// with a puppet.conf change is followed.
// Nothing is forked or read per request.
func (p *Puppet) Watch(ctx context.Context, poll time.Duration, h Hooks) {
	var (
		cur           *Settings
		classes, sum  fileStamp
		haveBaselines bool
	)
	// While Watch runs, the managed-resource index is re-read here when
	// resources.txt or the cached catalog changes, not on requests.
	defer p.managed.stopWatching()
	for ctx.Err() == nil {
		s, err := p.settings.sync(ctx)
		if err != nil && ctx.Err() == nil {
			p.log.Warn("puppet: could not read Puppet's settings; classes and run notices wait for a working puppet config print", "err", err)
		}
		var files []string
		watching := s != nil
		if watching {
			files = []string{s.Config, s.ClassFile, s.Summary, s.ResourceFile, s.Catalog}
			p.managed.refresh(s)
		}
		paths, dirs := watchPaths(files)
		w := filewatch.New(poll, paths...)
		for moved := false; !moved; {
			select {
			case <-ctx.Done():
				w.Stop()
				return
			case <-w.C:
			case <-p.settings.reloaded:
			}
			s, _ = p.settings.sync(ctx)
			if s == nil {
				if cur == nil {
					continue
				}
				s = cur
			}
			if _, now := watchPaths(files); now != dirs {
				// A missing directory appeared (Puppet's first run
				// creates its state directories): watch inside it.
				moved = true
			}
			if !watching {
				moved = true // settings read at last: watch their files
			}
			if cur != nil && (s.ClassFile != cur.ClassFile || s.Summary != cur.Summary || s.Config != cur.Config ||
				s.ResourceFile != cur.ResourceFile || s.Catalog != cur.Catalog) {
				// Files moved: watch the new ones; the new lastrunfile
				// is a new baseline, not a finished run.
				moved, haveBaselines = true, false
				classes = fileStamp{}
			}
			cur = s
			p.managed.refresh(s)
			if st := stampOf(s.ClassFile); st != classes || !haveBaselines {
				classes = st
				if h.Classes != nil {
					h.Classes(p.readClasses(s.ClassFile))
				}
			}
			st := stampOf(s.Summary)
			if haveBaselines && st != sum && st.ok && h.RunFinished != nil {
				h.RunFinished()
			}
			sum, haveBaselines = st, true
		}
		w.Stop()
	}
}

// watchPaths adds to files the directories on their way that do not exist
// yet, up to the first that does, so that filewatch (which watches a file's
// directory) also reports their creation; dirs tells which exist, so that
// the caller rebuilds its watcher once one appears.
func watchPaths(files []string) (paths []string, dirs string) {
	for _, f := range files {
		if f == "" {
			continue
		}
		paths = append(paths, f)
		for d := filepath.Dir(f); ; d = filepath.Dir(d) {
			if _, err := os.Stat(d); err == nil || filepath.Dir(d) == d {
				dirs += d + "\x00"
				break
			}
			paths = append(paths, d)
		}
	}
	return paths, dirs
}

// readClasses reads Puppet's classfile; nil when it does not exist. An
// unreadable file is logged and reads as no classes.
func (p *Puppet) readClasses(path string) []string {
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		p.log.Warn("puppet: classfile unreadable", "file", path, "err", err)
		return nil
	}
	defer f.Close()
	c, err := facts.ParseClasses(f)
	if err != nil {
		p.log.Warn("puppet: classfile unreadable", "file", path, "err", err)
		return nil
	}
	return c
}
