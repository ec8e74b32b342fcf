package chefagent

import (
	"context"
	"os"
	"time"

	"github.com/marionette/mco/internal/filewatch"
)

// Hooks receive what Watch learns from the report handler's file. Both are
// called from Watch's goroutine, one at a time, and should return quickly.
type Hooks struct {
	// Classes, when set, receives the run list's classes (RunListClasses)
	// at start and after every run; nil when there is no report yet.
	Classes func([]string)
	// RunFinished, when set, is called when the report changes after Watch
	// began: a chef-client run ended (ours or the Chef daemon's).
	RunFinished func()
}

// Watch follows the report file (internal/filewatch, with poll as the
// safety net) until ctx ends. Nothing is read per request.
func (c *Chef) Watch(ctx context.Context, poll time.Duration, h Hooks) {
	w := filewatch.New(poll, c.opts.ReportFile)
	defer w.Stop()
	var last stamp
	first := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.C:
		}
		st := stampOf(c.opts.ReportFile)
		if !first && st == last {
			continue
		}
		if h.Classes != nil {
			h.Classes(c.Classes())
		}
		if !first && st.ok && h.RunFinished != nil {
			h.RunFinished()
		}
		last, first = st, false
	}
}

// stamp is what tells a rewritten report from the one last read.
type stamp struct {
	mod  time.Time
	size int64
	ok   bool
}

func stampOf(path string) stamp {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}
	}
	return stamp{mod: fi.ModTime(), size: fi.Size(), ok: true}
}
