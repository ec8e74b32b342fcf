package daemon_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/marionette/mco/internal/config"
	"github.com/marionette/mco/internal/daemon"
	"github.com/marionette/mco/internal/natstest"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/poll"
	"github.com/marionette/mco/protocol"
)

// TestRunStopsEverything: when Run returns, every goroutine it started (facts
// watcher, registration, revocation and certificate watchers, the external
// agent loader) has ended — stop means stopped.
func TestRunStopsEverything(t *testing.T) {
	cfg, conf := testServer(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	d, err := daemon.New(cfg, conf, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	// Run starts all its goroutines before it waits for ctx: an ended
	// context makes it start them and then stop them all again.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// testServer is a node configuration for a broker of its own: audit,
// replay file, revocation list and libdir as deployed, policy off.
func testServer(t *testing.T) (*config.Server, string) {
	t.Helper()
	dir := t.TempDir()
	st := pki.Store{Dir: filepath.Join(dir, "pki")}
	if _, err := st.Init("daemon test CA"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Issue(pki.RoleNode, "node1.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(st.RevokedPath(), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(dir, "lib")
	if err := os.MkdirAll(filepath.Join(lib, "agent"), 0o755); err != nil {
		t.Fatal(err)
	}
	url := natstest.Start(t)
	conf := filepath.Join(dir, "server.conf")
	body := fmt.Sprintf(`broker = %s
insecure = true
tls.ca = %s
tls.cert = %s
tls.key = %s
security.revocation_file = %s
policy.disabled = true
audit.log = %s
request.replay_file = %s
libdir = %s
registration.interval = 1h
`, url, st.CACertPath(), st.CertPath("node1.test"), st.KeyPath("node1.test"), st.RevokedPath(),
		filepath.Join(dir, "audit.log"), filepath.Join(dir, "replay"), lib)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadServer(conf)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, conf
}

// TestMemoryReleasedWhenQuiet: the daemon hands its memory back once after
// start and once after a burst of requests has stopped, and an idle node is
// not woken for it.
func TestMemoryReleasedWhenQuiet(t *testing.T) {
	cfg, conf := testServer(t)
	var released atomic.Int64
	d, err := daemon.New(cfg, conf, "test", slog.New(countHandler{msg: daemon.ReleasedMessage, n: &released}))
	if err != nil {
		t.Fatal(err)
	}
	daemon.SetReleaseDelays(d, 20*time.Millisecond, 100*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitReleases := func(want int64, after string) {
		t.Helper()
		if !poll.Wait(func() bool { return released.Load() >= want }) {
			t.Fatalf("%d releases %s, want %d", released.Load(), after, want)
		}
		// Five more quiet periods: nothing else may be released.
		time.Sleep(500 * time.Millisecond)
		if n := released.Load(); n != want {
			t.Fatalf("%d releases %s with no request since, want %d", n, after, want)
		}
	}
	waitReleases(1, "after start")
	d.Completed("rpcutil", "ping", protocol.OK, time.Millisecond) // a request answered
	waitReleases(2, "after a request")
}

// countHandler counts the log records with one message.
type countHandler struct {
	msg string
	n   *atomic.Int64
}

func (countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countHandler) WithGroup(string) slog.Handler      { return h }
