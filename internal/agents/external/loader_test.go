package external

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/marionette/mco/agent"
)

// watchSets runs the loader and returns a channel of the agent names it
// reports, plus a stop function that waits for Run to return.
func watchSets(t *testing.T, l *Loader) (<-chan []string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sets := make(chan []string, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Run(ctx, func(agents []*agent.Agent) { sets <- names(agents) })
	}()
	return sets, func() { cancel(); <-done }
}

// waitForSet reads reported sets until one equals want; reloads may report
// intermediate sets while files are being written.
func waitForSet(t *testing.T, sets <-chan []string, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	timeout := time.After(30 * time.Second)
	var last []string
	for {
		select {
		case got := <-sets:
			if slices.Equal(got, want) {
				return
			}
			last = got
		case <-timeout:
			t.Fatalf("loader never reported %v (last reported %v)", want, last)
		}
	}
}

func TestLoaderReload(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	libdir := t.TempDir()
	writeAgent(t, libdir, "first", "exit 0")
	// Rescan is long so that only file events can trigger reloads.
	l := NewLoader(Options{LibDirs: []string{libdir}, Debounce: 20 * time.Millisecond, Rescan: time.Hour})
	agents, errs := l.Load()
	if len(errs) != 0 || !slices.Equal(names(agents), []string{"first"}) {
		t.Fatalf("initial load = %v %v", names(agents), errs)
	}
	sets, stop := watchSets(t, l)
	defer stop()

	agentDir := filepath.Join(libdir, "agent")
	steps := []struct {
		name   string
		change func(t *testing.T)
		want   []string
	}{
		{"add an agent", func(t *testing.T) { writeAgent(t, libdir, "second", "exit 0") }, []string{"first", "second"}},
		{"break a DDL", func(t *testing.T) {
			writeFile(t, filepath.Join(agentDir, "first.json"), "{", 0o644)
		}, []string{"second"}},
		{"fix it again", func(t *testing.T) {
			writeFile(t, filepath.Join(agentDir, "first.json"), testDDL("first", "run"), 0o644)
		}, []string{"first", "second"}},
		{"remove an executable", func(t *testing.T) {
			if err := os.Remove(filepath.Join(agentDir, "second")); err != nil {
				t.Fatal(err)
			}
		}, []string{"first"}},
		{"add a per-platform executable", func(t *testing.T) {
			writeFile(t, filepath.Join(agentDir, "second", exeName("second")), "#!/bin/sh\n", 0o755)
		}, []string{"first", "second"}},
		{"remove the agent dir", func(t *testing.T) {
			if err := os.RemoveAll(agentDir); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"create the agent dir again", func(t *testing.T) { writeAgent(t, libdir, "third", "exit 0") }, []string{"third"}},
		{"make an executable group-writable", func(t *testing.T) {
			chmod(t, filepath.Join(agentDir, "third"), 0o775)
		}, nil},
		{"and safe again", func(t *testing.T) {
			chmod(t, filepath.Join(agentDir, "third"), 0o755)
		}, []string{"third"}},
		{"give the executable to another user (root only)", func(t *testing.T) {
			if os.Geteuid() != 0 {
				t.Skip("only root can give a file away")
			}
			if err := os.Chown(filepath.Join(agentDir, "third"), 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"in Choria's layout", func(t *testing.T) {
			writeAgent(t, filepath.Join(libdir, "mcollective"), "fourth", "exit 0")
		}, []string{"fourth"}},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			step.change(t)
			waitForSet(t, sets, step.want...)
		})
	}
}

// TestLoaderReportsChangesBeforeRun checks that a change made between Load
// and Run is not lost.
func TestLoaderReportsChangesBeforeRun(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	libdir := t.TempDir()
	l := NewLoader(Options{LibDirs: []string{libdir}, Debounce: 20 * time.Millisecond, Rescan: time.Hour})
	if agents, _ := l.Load(); len(agents) != 0 {
		t.Fatalf("initial load = %v", names(agents))
	}
	writeAgent(t, libdir, "early", "exit 0")
	sets, stop := watchSets(t, l)
	defer stop()
	waitForSet(t, sets, "early")
}

// exeName is the per-platform executable name of an agent.
func exeName(name string) string {
	return name + "-" + runtime.GOOS + "_" + runtime.GOARCH
}
