package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/marionette/mco/internal/natstest"
	"github.com/marionette/mco/internal/pki"
)

// TestDaemonStartedBeforeBroker: a node whose broker is not up yet waits for
// it (reconnecting with backoff) instead of exiting, and serves once the
// broker appears.
func TestDaemonStartedBeforeBroker(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	url := fmt.Sprintf("tls://127.0.0.1:%d", natstest.FreePort(t))
	name := "early.e2e"
	if _, err := c.store.Issue(pki.RoleNode, name, nil); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(c.dir, "nodes", name)
	conf := filepath.Join(dir, "server.conf")
	writeFile(t, conf, fmt.Sprintf("broker = %s\ntls.ca = %s\ntls.cert = %s\ntls.key = %s\n%s\n",
		url, c.store.CACertPath(), c.store.CertPath(name), c.store.KeyPath(name), strings.Join(nodeDefaults(dir, nil), "\n")))
	daemon := startProcess(t, "daemon "+name, dir, "server", "run", "-c", conf, "--log-level", "debug")
	daemon.waitStderr(t, "broker not reachable yet")
	if daemon.exited() {
		t.Fatalf("the daemon exited while its broker was down:\n%s", daemon.stderrText())
	}

	brokerConf := filepath.Join(c.dir, "late-broker.conf")
	writeFile(t, brokerConf, fmt.Sprintf("listen = %s\ntls.ca = %s\ntls.cert = %s\ntls.key = %s\n",
		url[len("tls://"):], c.store.CACertPath(), c.store.CertPath("broker.e2e"), c.store.KeyPath("broker.e2e")))
	startProcess(t, "late broker", "", "broker", "run", "-c", brokerConf).waitStderr(t, "broker ready")

	cl := c.connect(confFor(t, c, "alice.mcollective", url))
	waitUntil(t, name+" to answer once its broker is up", func() bool {
		if daemon.exited() {
			t.Fatalf("daemon exited:\n%s", daemon.stderrText())
		}
		return pingOK(cl, name)
	})
}
