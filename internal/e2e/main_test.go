// Package e2e holds end-to-end tests: they build the real mco binary, start a
// real TLS broker and real node daemons on 127.0.0.1 with random ports, and
// drive them through the binary and through the client package.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/marionette/mco/client"
	"github.com/marionette/mco/internal/broker"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/security"
)

// mcoBin is the binary built once for the whole package.
var mcoBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mco-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mcoBin = filepath.Join(dir, "mco")
	// Every mco run of the tests keeps its discovery cache here, not in the
	// user's own cache directory.
	if err := os.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", mcoBin, "github.com/marionette/mco/cmd/mco")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building mco:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is the outcome of one mco invocation.
type result struct {
	stdout, stderr string
	code           int
}

// mco runs the built binary with args (and optional stdin) and returns its output.
func mco(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mcoBin, args...)
	cmd.Env = append(os.Environ(), "MCO_CONFIG=", "NO_COLOR=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running mco %v: %v", args, err)
	}
	return r
}

// collective is a PKI, a TLS broker (in-process) and daemons (subprocesses).
type collective struct {
	t      *testing.T
	dir    string
	store  pki.Store
	broker *broker.Broker
}

// collectiveOptions tune newCollective.
type collectiveOptions struct {
	// BrokerCollectives restricts clients to collectives, as broker.conf's
	// collectives.<certname> does.
	BrokerCollectives map[string][]string
	// RevocationFile makes the broker honour the store's revocation list.
	Revocation bool
}

// newCollective creates a CA, a client certificate "alice.mcollective" and a
// running TLS broker.
func newCollective(t *testing.T, o collectiveOptions) *collective {
	t.Helper()
	dir := t.TempDir()
	st := pki.Store{Dir: filepath.Join(dir, "pki")}
	ca, err := st.Init("e2e CA")
	if err != nil {
		t.Fatal(err)
	}
	v, err := security.NewVerifier(security.VerifierOptions{CA: ca.Cert})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Issue(pki.RoleBroker, "broker.e2e", []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	id, err := security.LoadIdentity(st.CertPath("broker.e2e"), st.KeyPath("broker.e2e"))
	if err != nil {
		t.Fatal(err)
	}
	c := &collective{t: t, dir: dir, store: st}
	c.broker, err = broker.Start(broker.Options{Identity: id, Verifier: v, Listen: "127.0.0.1:0", Collectives: o.BrokerCollectives})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.broker.Shutdown)
	if o.Revocation {
		// As mco broker run does: reload the list and drop revoked connections.
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		go func() {
			_ = security.WatchRevocations(ctx, st.RevokedPath(), v, 100*time.Millisecond, nil, c.broker.DropRevoked)
		}()
	}
	c.client("alice.mcollective")
	return c
}

// client issues a client certificate (once) and writes NAME.conf for it.
func (c *collective) client(name string, extra ...string) string {
	c.t.Helper()
	if _, err := os.Stat(c.store.CertPath(name)); err != nil {
		if _, err := c.store.Issue(pki.RoleClient, name, nil); err != nil {
			c.t.Fatal(err)
		}
	}
	conf := filepath.Join(c.dir, name+".conf")
	body := fmt.Sprintf("broker = %s\ntls.ca = %s\ntls.cert = %s\ntls.key = %s\ndiscovery_timeout = 1s\n%s\n",
		c.broker.URL(), c.store.CACertPath(), c.store.CertPath(name), c.store.KeyPath(name), strings.Join(extra, "\n"))
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return conf
}

// clientConf is alice's configuration.
func (c *collective) clientConf() string { return filepath.Join(c.dir, "alice.mcollective.conf") }

// connect returns a client package connection for a client configuration.
func (c *collective) connect(conf string) *client.Client {
	c.t.Helper()
	cfg, err := client.ConfigFromFile(conf)
	if err != nil {
		c.t.Fatal(err)
	}
	cl, err := client.Connect(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// daemon is a running `mco server run` subprocess.
type daemon struct {
	name   string
	dir    string // its working directory (facts, logs)
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

// startDaemon issues a node certificate (once), writes server.conf with the
// given extra lines (key = value) and runs `mco server run` until the test
// ends; it returns once the node answers a ping.
func (c *collective) startDaemon(name string, extra ...string) *daemon {
	c.t.Helper()
	if _, err := os.Stat(c.store.CertPath(name)); err != nil {
		if _, err := c.store.Issue(pki.RoleNode, name, nil); err != nil {
			c.t.Fatal(err)
		}
	}
	dir := filepath.Join(c.dir, "nodes", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.t.Fatal(err)
	}
	conf := filepath.Join(dir, "server.conf")
	body := fmt.Sprintf("broker = %s\ntls.ca = %s\ntls.cert = %s\ntls.key = %s\n%s\n",
		c.broker.URL(), c.store.CACertPath(), c.store.CertPath(name), c.store.KeyPath(name), strings.Join(nodeDefaults(dir, extra), "\n"))
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		c.t.Fatal(err)
	}
	d := &daemon{name: name, dir: dir, stderr: &bytes.Buffer{}}
	d.cmd = exec.Command(mcoBin, "server", "run", "-c", conf, "--log-level", "debug")
	d.cmd.Dir = dir
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() {
		_ = d.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = d.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = d.cmd.Process.Kill()
			<-done
		}
		if c.t.Failed() {
			c.t.Logf("daemon %s log:\n%s", name, d.stderr.String())
		}
	})
	c.waitFor(name)
	return d
}

// waitFor polls until the node answers a directed ping (or fails the test).
func (c *collective) waitFor(name string) {
	c.t.Helper()
	cl := c.connect(c.clientConf())
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ok := false
		_, _ = cl.Call(context.Background(), client.Request{Agent: "rpcutil", Action: "ping", Targets: []string{name}, Timeout: 500 * time.Millisecond},
			func(r client.Result) { ok = ok || r.OK() })
		if ok {
			return
		}
	}
	c.t.Fatalf("node %s never answered a ping", name)
}
