package puppetagent

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/marionette/mco/internal/poll"
)

// watchRecorder collects what Watch reports.
type watchRecorder struct {
	mu      sync.Mutex
	classes [][]string
	runs    int
}

func (r *watchRecorder) hooks() Hooks {
	return Hooks{
		Classes: func(c []string) { r.mu.Lock(); r.classes = append(r.classes, c); r.mu.Unlock() },
		RunFinished: func() {
			r.mu.Lock()
			r.runs++
			r.mu.Unlock()
		},
	}
}

func (r *watchRecorder) last() ([]string, int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.classes) == 0 {
		return nil, 0, r.runs
	}
	return r.classes[len(r.classes)-1], len(r.classes), r.runs
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	// The conditions wait on real Puppet runs, which a loaded machine can
	// stretch past poll.Deadline.
	poll.UntilWithin(t, 2*time.Minute, what, cond)
}

func applyManifest(t *testing.T, h *puppetHome) {
	t.Helper()
	if out, err := exec.Command("puppet", h.runCommand()[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("puppet apply: %v\n%s", err, out)
	}
}

// A real puppet apply writes classes.txt where Puppet's settings say (the
// test confdir puts it in <vardir>/state); Watch finds it from those
// settings, reports its classes and the finished run, and follows a
// classfile that puppet.conf moves.
func TestWatchClassesAndRuns(t *testing.T) {
	needPuppet(t)
	defer goleak.VerifyNone(t)
	h := newPuppetHome(t, "class webserver { notify { 'hi': } }\ninclude webserver\n")
	p, _, _ := newTestPuppet(t, h, nil)
	rec := &watchRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Watch(ctx, time.Hour, rec.hooks()); close(done) }()
	defer func() { cancel(); <-done }()

	waitUntil(t, "the first classes report", func() bool { _, n, _ := rec.last(); return n >= 1 })
	if c, _, runs := rec.last(); c != nil || runs != 0 {
		t.Fatalf("before any run: classes %v, runs %d", c, runs)
	}

	applyManifest(t, h)
	waitUntil(t, "classes after the run", func() bool { c, _, _ := rec.last(); return slices.Contains(c, "webserver") })
	waitUntil(t, "the run noticed", func() bool { _, _, runs := rec.last(); return runs >= 1 })
	s, err := p.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(h.dir, "var", "state", "classes.txt"); s.ClassFile != want {
		t.Fatalf("classfile %s, want %s", s.ClassFile, want)
	}

	// puppet.conf moves the classfile: the new one is read and watched.
	moved := filepath.Join(h.dir, "elsewhere", "classes.txt")
	if err := os.MkdirAll(filepath.Dir(moved), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(moved, []byte("from_elsewhere\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(h.confdir, "puppet.conf")
	b, _ := os.ReadFile(conf)
	if err := os.WriteFile(conf, append(b, []byte("[agent]\nclassfile = "+moved+"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "classes from the moved classfile", func() bool { c, _, _ := rec.last(); return slices.Equal(c, []string{"from_elsewhere"}) })
	if err := os.WriteFile(moved, []byte("from_elsewhere\nchanged_again\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the moved classfile watched", func() bool { c, _, _ := rec.last(); return slices.Contains(c, "changed_again") })
	if _, _, runs := rec.last(); runs != 1 {
		t.Fatalf("%d runs noticed, want 1 (moving files is not a run)", runs)
	}
}
