package devcluster_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/marionette/mco/internal/devcluster"
)

// TestCloseLeavesNoGoroutine: stop means stopped — the nodes, the broker and
// the libdir watcher are all gone when Close returns.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	lib := t.TempDir()
	if err := os.MkdirAll(filepath.Join(lib, "agent"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := devcluster.Start(context.Background(), devcluster.Options{Dir: t.TempDir(), Nodes: 3, Libdirs: []string{lib}})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// TestStartHonoursItsContext: a start whose context has ended starts no
// node and leaves nothing running.
func TestStartHonoursItsContext(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if c, err := devcluster.Start(ctx, devcluster.Options{Dir: t.TempDir(), Nodes: 3}); err == nil {
		c.Close()
		t.Fatal("Start with an ended context succeeded")
	}
}
