package daemon_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/marionette/mco/internal/config"
	"github.com/marionette/mco/internal/daemon"
	"github.com/marionette/mco/internal/natstest"
	"github.com/marionette/mco/internal/pki"
)

// TestRunStopsEverything: when Run returns, every goroutine it started (facts
// watcher, registration, revocation and certificate watchers, the external
// agent loader) has ended — stop means stopped.
func TestRunStopsEverything(t *testing.T) {
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
