package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/marionette/mco/client"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/poll"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/protocol"
)

// The tests in this file cover identity, revocation and broker
// restrictions, ActionPolicy on a real daemon and local and central
// audit (docs/security.md) through real processes.

// TestPolicyDecisionsAreAuditedAndTamperEvident: a daemon with an rpcutil
// policy allows alice, denies bob by rule and denies callers whose ids merely
// resemble alice's by default; each request is audited with its decision and
// deciding line, the log verifies, and edits, deletions and truncation are
// reported at the first broken line.
func TestPolicyDecisionsAreAuditedAndTamperEvident(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	policyDir := filepath.Join(c.dir, "policy")
	writeFile(t, filepath.Join(policyDir, "rpcutil.policy"),
		"# rpcutil access\npolicy default deny\nallow\tcert=alice.mcollective\t*\t*\ndeny\tcert=bob.mcollective\t*\t*\n")
	auditLog := filepath.Join(c.dir, "audit", "node1.log")
	if err := os.MkdirAll(filepath.Dir(auditLog), 0o700); err != nil {
		t.Fatal(err)
	}
	d := c.startDaemon("node1.e2e", "policy.dir = "+policyDir, "audit.log = "+auditLog)

	callers := []struct {
		name     string
		code     int    // mco rpc exit code
		decision string // in the audit record
		line     string // deciding policy line
	}{
		{"alice.mcollective", 0, "allow", "rpcutil.policy:3"},
		{"bob.mcollective", 2, "deny", "rpcutil.policy:4"},
		// Caller ids that contain or are contained in an allowed one must
		// not match it: callers match as whole tokens.
		{"ali.mcollective", 2, "deny", "rpcutil.policy:2"},
		{"xalice.mcollective", 2, "deny", "rpcutil.policy:2"},
	}
	for _, cl := range callers {
		conf := c.client(cl.name)
		r := mco(t, "", "-c", conf, "rpc", "rpcutil", "ping", "-I", d.name, "-t", "5s")
		if r.code != cl.code {
			t.Fatalf("%s: mco rpc exit %d, want %d\nstdout:\n%s\nstderr:\n%s", cl.name, r.code, cl.code, r.stdout, r.stderr)
		}
		if cl.decision == "deny" && !strings.Contains(r.stdout, "not authorized") {
			t.Errorf("%s: denied reply does not say so:\n%s", cl.name, r.stdout)
		}
	}

	for _, cl := range callers {
		rec := waitForAudit(t, auditLog, func(m map[string]any) bool {
			return m["kind"] == "request" && m["caller"] == "cert="+cl.name && m["action"] == "ping"
		})
		if rec["decision"] != cl.decision || !strings.Contains(fmt.Sprint(rec["policy_line"]), cl.line) {
			t.Errorf("%s: audit decision %v by %q, want %s by %s", cl.name, rec["decision"], rec["policy_line"], cl.decision, cl.line)
		}
	}

	if r := mco(t, "", "audit", "verify", auditLog); r.code != 0 || !strings.Contains(r.stdout, "chain intact") {
		t.Fatalf("audit verify of the live log: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Stop the daemon so the head file records the last line; removal of
	// lines from the end is only detectable against it.
	stopDaemon(t, d)
	orig, err := os.ReadFile(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	head, err := os.ReadFile(auditLog + ".head")
	if err != nil {
		t.Fatalf("no head file after shutdown: %v", err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(orig), "\n"), "\n")
	lines[len(lines)-1] += "\n"
	if len(lines) < 5 {
		t.Fatalf("audit log has only %d lines", len(lines))
	}
	mid := len(lines) / 2 // 0-based index of a line in the middle
	edited := append([]string(nil), lines...)
	edited[mid] = strings.Replace(edited[mid], `"seq"`, `"edited":true,"seq"`, 1)
	deleted := append(append([]string(nil), lines[:mid]...), lines[mid+1:]...)

	tampers := []struct {
		name      string
		body      string
		withHead  bool
		wantLine  int
		wantInMsg string
	}{
		// An edited line is caught by the next line's prev hash.
		{"edited middle line", strings.Join(edited, ""), false, mid + 2, "previous line edited"},
		{"deleted middle line", strings.Join(deleted, ""), false, mid + 1, "lines removed"},
		{"truncated mid-line", string(orig[:len(orig)-10]), false, len(lines), "truncated"},
		{"last line removed", strings.Join(lines[:len(lines)-1], ""), true, len(lines), "removed from the end"},
	}
	for _, tc := range tampers {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "node1.log")
			writeFile(t, path, tc.body)
			if tc.withHead {
				writeFile(t, path+".head", string(head))
			}
			r := mco(t, "", "audit", "verify", path)
			want := fmt.Sprintf("line %d", tc.wantLine)
			if r.code == 0 || !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, tc.wantInMsg) {
				t.Fatalf("audit verify: exit %d, want non-zero naming %q and %q:\n%s%s", r.code, want, tc.wantInMsg, r.stdout, r.stderr)
			}
		})
	}
	// The untouched copy, with its head, still verifies.
	path := filepath.Join(t.TempDir(), "node1.log")
	writeFile(t, path, string(orig))
	writeFile(t, path+".head", string(head))
	if r := mco(t, "", "audit", "verify", path); r.code != 0 {
		t.Fatalf("audit verify of the intact copy: exit %d\n%s", r.code, r.stdout)
	}
}

// TestCentralAuditCollectAndSearch runs a broker whose collectors list names
// collector.mcollective, `mco audit collect` with that certificate, and a
// daemon with an audit log; the node's lines arrive in DIR/<node>.log, verify
// as a chain, and `mco audit search` finds them.
func TestCentralAuditCollectAndSearch(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	c.client("collector.mcollective")
	brokerURL := startBrokerProcess(t, c, "collectors = collector.mcollective")
	alice := confFor(t, c, "alice.mcollective", brokerURL)
	collector := confFor(t, c, "collector.mcollective", brokerURL)

	// A client that is not a collector is refused, with the reason.
	r := mco(t, "", "-c", alice, "audit", "collect", "--dir", filepath.Join(c.dir, "refused"))
	if r.code == 0 || !strings.Contains(r.stderr, "collectors") {
		t.Fatalf("collect as a non-collector: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}

	dir := filepath.Join(c.dir, "central")
	col := startProcess(t, "collector", "", "-c", collector, "audit", "collect", "--dir", dir, "-v")
	col.waitStderr(t, "collecting audit lines")

	node := "audited.e2e"
	runDaemon(t, c, brokerURL, node, alice, "audit.log = "+filepath.Join(c.dir, "audited.log"))
	if r := mco(t, "", "-c", alice, "rpc", "rpcutil", "get_fact", "fact=kernel", "-I", node); r.code != 0 {
		t.Fatalf("rpc: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	collected := filepath.Join(dir, node+".log")
	waitForAudit(t, collected, func(m map[string]any) bool { return m["kind"] == "request" && m["action"] == "get_fact" })
	waitForAudit(t, collected, func(m map[string]any) bool { return m["kind"] == "complete" })

	if r := mco(t, "", "audit", "verify", collected); r.code != 0 {
		t.Fatalf("collected log does not verify: exit %d\n%s", r.code, r.stdout)
	}
	r = mco(t, "", "audit", "search", "--dir", dir, "--caller", "cert=alice.mcollective", "--action", "get_fact", "--since", "1h", "--json")
	var recs []struct {
		Node    string `json:"node"`
		Request struct {
			Caller, Agent, Action, Decision string
		} `json:"request"`
		Completion *struct{ Status int } `json:"completion"`
		Broken     string                `json:"broken"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil || r.code != 0 {
		t.Fatalf("audit search --json: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if len(recs) != 1 || recs[0].Node != node || recs[0].Request.Agent != "rpcutil" || recs[0].Request.Decision != "allow" ||
		recs[0].Completion == nil || recs[0].Completion.Status != 0 || recs[0].Broken != "" {
		t.Fatalf("audit search found %+v, want one allowed, completed rpcutil get_fact on %s", recs, node)
	}
	r = mco(t, "", "audit", "search", "--dir", dir, "--caller", "alice.mcollective", "--node", node)
	if r.code != 0 || !strings.Contains(r.stdout, "get_fact") || !strings.Contains(r.stdout, "cert=alice.mcollective") {
		t.Fatalf("audit search table: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = mco(t, "", "audit", "search", "--dir", dir, "--caller", "cert=bob.mcollective")
	if r.code != 0 || !strings.Contains(r.stdout, "No matching") {
		t.Fatalf("audit search for an absent caller: exit %d\n%s", r.code, r.stdout)
	}
	if !strings.Contains(col.stdout(), node) {
		t.Errorf("collect -v printed no line for %s:\n%s", node, col.stdout())
	}
}

// TestCertnameAllowlist: a daemon whose allow list names bob and the ops
// certificates drops alice's requests unanswered and counts them.
func TestCertnameAllowlist(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	// The in-process broker keeps the default /\.mcollective$/ allow list, so
	// every name here ends in .mcollective.
	ops := c.client("mon.ops.mcollective")
	bob := c.client("bob.mcollective")
	node := "guarded.e2e"
	runDaemon(t, c, c.broker.URL(), node, ops, `security.certname_allowlist = bob.mcollective, /\.ops\.mcollective$/`)

	// Exact -I: no discovery, no response: exit 4 (SPEC §9).
	r := mco(t, "", "-c", c.clientConf(), "rpc", "rpcutil", "ping", "-I", node, "-t", "2s")
	if r.code != 4 || !strings.Contains(r.stdout, "No response from") {
		t.Fatalf("alice against the allow list: exit %d, want 4\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := mco(t, "", "-c", bob, "rpc", "rpcutil", "ping", "-I", node); r.code != 0 {
		t.Fatalf("bob is on the allow list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := waitDropped(t, c, ops, node, "untrusted_certificate"); n < 1 {
		t.Fatalf("untrusted_certificate drops = %v", n)
	}
}

// TestPrivilegedCallerID: ui.privileged.mcollective may sign for
// cert=alice.mcollective (and is then authorized as alice); bob may not, and
// his request is dropped as a caller mismatch.
func TestPrivilegedCallerID(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	policyDir := filepath.Join(c.dir, "policy")
	writeFile(t, filepath.Join(policyDir, "rpcutil.policy"),
		"policy default deny\nallow\tcert=alice.mcollective\t*\t*\n")
	auditLog := filepath.Join(c.dir, "priv.log")
	node := "priv.e2e"
	c.startDaemon(node, "policy.dir = "+policyDir, "audit.log = "+auditLog)

	ui := newRawCaller(t, c, "ui.privileged.mcollective")
	rep, ok := ui.call(t, node, "cert=alice.mcollective", 10*time.Second)
	if !ok || rep.Status != protocol.OK || rep.Sender != node {
		t.Fatalf("privileged request for alice: reply %+v (received %v), want status OK", rep, ok)
	}
	rec := waitForAudit(t, auditLog, func(m map[string]any) bool { return m["sender"] == "ui.privileged.mcollective" })
	if rec["caller"] != "cert=alice.mcollective" || rec["decision"] != "allow" {
		t.Errorf("audit of the privileged request: %v", rec)
	}
	// Signing as itself, the UI is just another caller the policy denies.
	if rep, ok := ui.call(t, node, "cert=ui.privileged.mcollective", 10*time.Second); !ok || rep.Status == protocol.OK {
		t.Errorf("UI acting as itself: reply %+v (received %v), want a denial", rep, ok)
	}

	bob := newRawCaller(t, c, "bob.mcollective")
	id := bob.send(t, node, "cert=alice.mcollective")
	if n := waitDropped(t, c, c.clientConf(), node, "caller_mismatch"); n < 1 {
		t.Fatalf("caller_mismatch drops = %v", n)
	}
	// The drop is counted, so no reply can be on its way any more.
	if m, err := bob.sub.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatalf("bob's forged request %s got a reply: %s", id, m.Data)
	}
}

// TestRevocationTakesEffectWithoutRestart: revoking bob takes effect without
// restarting anything, at each layer on its own — a node whose broker does not
// know the revocation drops his requests, and a broker that knows it drops his
// open connection and refuses new ones.
func TestRevocationTakesEffectWithoutRestart(t *testing.T) {
	t.Parallel()
	t.Run("node", func(t *testing.T) {
		c := newCollective(t, collectiveOptions{})
		bobConf := c.client("bob.mcollective")
		node := "revoking.e2e"
		c.startDaemon(node, "security.revocation_file = "+c.store.RevokedPath())
		bob := c.connect(bobConf)
		if !pingOK(bob, node) {
			t.Fatal("bob cannot ping before revocation")
		}
		if r := mco(t, "", "pki", "revoke", "bob.mcollective", "--dir", c.store.Dir); r.code != 0 {
			t.Fatalf("pki revoke: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		waitUntil(t, "the daemon to drop bob's requests", func() bool { return !pingOK(bob, node) })
		if n := waitDropped(t, c, c.clientConf(), node, "untrusted_certificate"); n < 1 {
			t.Fatalf("untrusted_certificate drops = %v", n)
		}
		if !pingOK(c.connect(c.clientConf()), node) {
			t.Fatal("alice is no longer answered after bob's revocation")
		}
	})
	t.Run("broker", func(t *testing.T) {
		c := newCollective(t, collectiveOptions{Revocation: true})
		bobConf := c.client("bob.mcollective")
		node := "revoking.e2e"
		c.startDaemon(node)
		bob := c.connect(bobConf)
		if !pingOK(bob, node) {
			t.Fatal("bob cannot ping before revocation")
		}
		if r := mco(t, "", "pki", "revoke", "bob.mcollective", "--dir", c.store.Dir); r.code != 0 {
			t.Fatalf("pki revoke: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		// bob's connection predates the revocation: the broker drops it.
		waitUntil(t, "the broker to drop bob's open connection", func() bool { return !pingOK(bob, node) })
		cfg, err := client.ConfigFromFile(bobConf)
		if err != nil {
			t.Fatal(err)
		}
		if cl, err := client.Connect(cfg); err == nil {
			cl.Close()
			t.Fatal("the broker accepted a new connection from bob")
		}
		if !pingOK(c.connect(c.clientConf()), node) {
			t.Fatal("alice is no longer answered after bob's revocation")
		}
	})
}

// TestCollectiveRestriction: dev.mcollective may reach the development
// collective of a node that is in production too, and is told clearly when it
// tries production.
func TestCollectiveRestriction(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{BrokerCollectives: map[string][]string{"dev.mcollective": {"development"}}})
	dev := c.client("dev.mcollective", "collective = development", "collectives = development, production")
	node := "shared.e2e"
	runDaemon(t, c, c.broker.URL(), node, dev, "collectives = production, development")

	if r := mco(t, "", "-c", dev, "rpc", "rpcutil", "ping", "-I", node); r.code != 0 {
		t.Fatalf("dev in development: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := mco(t, "", "-c", dev, "rpc", "rpcutil", "ping", "-I", node, "-T", "production", "-t", "2s")
	if r.code == 0 || !strings.Contains(strings.ToLower(r.stdout+r.stderr), "refused") {
		t.Fatalf("dev in production: exit %d, want a failure saying the broker refused\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// Fire-and-forget requests need no reply subscription: the refusal is
	// of the publish itself and must be reported too.
	r = mco(t, "", "-c", dev, "rpc", "rpcutil", "ping", "-I", node, "-T", "production", "--no-results")
	if r.code == 0 || !strings.Contains(strings.ToLower(r.stdout+r.stderr), "refused") {
		t.Fatalf("dev in production, --no-results: exit %d, want a failure saying the broker refused\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// writeFile writes body to path, creating its directory.
func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// allowAlice writes an ActionPolicy file in policyDir for each agent that
// denies by default and lets alice.mcollective run every action.
func allowAlice(t *testing.T, policyDir string, agents ...string) {
	t.Helper()
	for _, a := range agents {
		writeFile(t, filepath.Join(policyDir, a+".policy"), "policy default deny\nallow\tcert=alice.mcollective\t*\t*\t*\n")
	}
}

// poll retries cond until it holds or a deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, what, cond)
}

// waitForAudit polls an audit log until a line satisfies match and returns it.
func waitForAudit(t *testing.T, path string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	var found map[string]any
	waitUntil(t, "an audit line in "+path, func() bool {
		data, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		for _, line := range strings.Split(string(data), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && match(m) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// pingOK reports whether node answers a directed rpcutil ping.
func pingOK(cl *client.Client, node string) bool {
	ok := false
	_, _ = cl.Call(context.Background(), client.Request{Agent: "rpcutil", Action: "ping", Targets: []string{node}, Timeout: time.Second},
		func(r client.Result) { ok = ok || r.OK() })
	return ok
}

// waitDropped polls rpcutil daemon_stats (asked with conf) until the node's
// drop counter for reason is positive, and returns it.
func waitDropped(t *testing.T, c *collective, conf, node, reason string) float64 {
	t.Helper()
	cl := c.connect(conf)
	var n float64
	waitUntil(t, reason+" drops on "+node, func() bool {
		_, _ = cl.Call(context.Background(), client.Request{Agent: "rpcutil", Action: "daemon_stats", Targets: []string{node}, Timeout: 2 * time.Second},
			func(r client.Result) {
				if d, ok := r.Data["dropped"].(map[string]any); ok && r.OK() {
					n, _ = d[reason].(float64)
				}
			})
		return n > 0
	})
	return n
}

// stopDaemon interrupts a daemon and waits for it to exit (the cleanup
// registered by startDaemon then finds it gone).
func stopDaemon(t *testing.T, d *daemon) {
	t.Helper()
	if err := d.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("daemon %s did not stop", d.name)
	}
}

// confFor writes a client configuration for an issued client certificate
// that points at brokerURL.
func confFor(t *testing.T, c *collective, name, brokerURL string, extra ...string) string {
	t.Helper()
	conf := filepath.Join(c.dir, name+"@"+strings.NewReplacer(":", "_", "/", "_").Replace(brokerURL)+".conf")
	writeFile(t, conf, fmt.Sprintf("broker = %s\ntls.ca = %s\ntls.cert = %s\ntls.key = %s\ndiscovery_timeout = 1s\n%s\n",
		brokerURL, c.store.CACertPath(), c.store.CertPath(name), c.store.KeyPath(name), strings.Join(extra, "\n")))
	return conf
}

// runDaemon is startDaemon for daemons startDaemon cannot wait for: on
// another broker, or refusing alice. It waits until waitConf's client gets an
// answer to a directed ping in that configuration's collective.
func runDaemon(t *testing.T, c *collective, brokerURL, name, waitConf string, extra ...string) {
	t.Helper()
	if _, err := os.Stat(c.store.CertPath(name)); err != nil {
		if _, err := c.store.Issue(pki.RoleNode, name, nil); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(c.dir, "nodes", name)
	conf := filepath.Join(dir, "server.conf")
	writeFile(t, conf, fmt.Sprintf("broker = %s\ntls.ca = %s\ntls.cert = %s\ntls.key = %s\n%s\n",
		brokerURL, c.store.CACertPath(), c.store.CertPath(name), c.store.KeyPath(name), strings.Join(nodeDefaults(dir, extra), "\n")))
	p := startProcess(t, "daemon "+name, dir, "server", "run", "-c", conf, "--log-level", "debug")
	cl := c.connect(waitConf)
	waitUntil(t, name+" to answer a ping", func() bool {
		if p.exited() {
			t.Fatalf("daemon %s exited:\n%s", name, p.stderrText())
		}
		return pingOK(cl, name)
	})
}

// process is an mco subprocess that runs until the test ends.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}

	mu       sync.Mutex
	out, err bytes.Buffer
	cond     *sync.Cond
}

// startProcess starts `mco args...` in dir ("" = the current one), interrupting it (then killing it) when
// the test ends and logging its stderr if the test failed.
func startProcess(t *testing.T, what, dir string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(mcoBin, args...), done: make(chan struct{})}
	p.cmd.Dir = dir
	p.cond = sync.NewCond(&p.mu)
	p.cmd.Env = append(os.Environ(), "MCO_CONFIG=", "NO_COLOR=1")
	p.cmd.Stdout = lockedWriter{p, &p.out}
	p.cmd.Stderr = lockedWriter{p, &p.err}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", what, p.stderrText())
		}
	})
	return p
}

// lockedWriter appends to one of a process's buffers and wakes waiters.
type lockedWriter struct {
	p   *process
	buf *bytes.Buffer
}

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	w.p.cond.Broadcast()
	return w.buf.Write(b)
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *process) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err.String()
}

// waitStderr waits until the process's stderr contains s and returns it.
func (p *process) waitStderr(t *testing.T, s string) string {
	t.Helper()
	timer := time.AfterFunc(20*time.Second, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(20 * time.Second)
	p.mu.Lock()
	defer p.mu.Unlock()
	for !strings.Contains(p.err.String(), s) {
		if time.Now().After(deadline) || p.exited() {
			t.Fatalf("waiting for %q on stderr; got:\n%s", s, p.err.String())
		}
		p.cond.Wait()
	}
	return p.err.String()
}

// startBrokerProcess runs `mco broker run` with the collective's broker
// certificate on a random port plus extra broker.conf lines, and returns its
// URL (read from its "broker ready" log line).
func startBrokerProcess(t *testing.T, c *collective, extra ...string) string {
	t.Helper()
	conf := filepath.Join(c.dir, "broker.conf")
	writeFile(t, conf, fmt.Sprintf("listen = 127.0.0.1:0\ntls.ca = %s\ntls.cert = %s\ntls.key = %s\n%s\n",
		c.store.CACertPath(), c.store.CertPath("broker.e2e"), c.store.KeyPath("broker.e2e"), strings.Join(extra, "\n")))
	p := startProcess(t, "broker", "", "broker", "run", "-c", conf)
	log := p.waitStderr(t, "broker ready")
	sc := bufio.NewScanner(strings.NewReader(log))
	re := regexp.MustCompile(`broker ready.* url=(\S+)`)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no URL in the broker's ready line:\n%s", log)
	return ""
}

// rawCaller signs requests itself, to send what the client package never
// would (another caller id).
type rawCaller struct {
	id  *security.Identity
	nc  *nats.Conn
	sub *nats.Subscription
}

func newRawCaller(t *testing.T, c *collective, name string) *rawCaller {
	t.Helper()
	return rawCallerAt(t, c, name, c.broker.URL())
}

// clientTLS issues (once) the client certificate of name in the
// collective's store and returns it with a pool holding the collective's CA:
// what a program that dials the broker itself needs.
func (c *collective) clientTLS(t *testing.T, name string) (*security.Identity, *x509.CertPool) {
	t.Helper()
	c.client(name)
	id, err := security.LoadIdentity(c.store.CertPath(name), c.store.KeyPath(name))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.ReadCert(c.store.CACertPath())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return id, roots
}

// send publishes a signed rpcutil ping for caller to node and returns its id.
func (rc *rawCaller) send(t *testing.T, node, caller string) string {
	t.Helper()
	var b [16]byte
	_, _ = rand.Read(b[:])
	reqID := hex.EncodeToString(b[:])
	req := protocol.Request{
		Protocol: protocol.RequestProtocol, ID: reqID, Sender: rc.id.Name(), CallerID: caller,
		Collective: "mcollective", Agent: "rpcutil", Action: "ping",
		ReplyTo: protocol.ReplySubject("mcollective", protocol.CallerHash(rc.id.Name()), reqID),
		Time:    time.Now().UnixNano(), TTL: 60, ProcessResults: true,
	}
	body, err := json.Marshal(&req)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := json.Marshal(&protocol.SecureRequest{Protocol: protocol.SecureRequestProtocol, Request: body, Signature: rc.id.Sign(body), Cert: rc.id.Cert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.nc.Publish(protocol.NodeSubject("mcollective", node), msg); err != nil {
		t.Fatal(err)
	}
	if err := rc.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return reqID
}

// call sends a request and waits for its reply.
func (rc *rawCaller) call(t *testing.T, node, caller string, wait time.Duration) (protocol.Reply, bool) {
	t.Helper()
	id := rc.send(t, node, caller)
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		m, err := rc.sub.NextMsg(time.Until(deadline))
		if err != nil {
			break
		}
		var env protocol.SecureReply
		var rep protocol.Reply
		if json.Unmarshal(m.Data, &env) != nil || json.Unmarshal(env.Reply, &rep) != nil {
			t.Fatalf("undecodable reply: %s", m.Data)
		}
		if rep.RequestID == id {
			return rep, true
		}
	}
	return protocol.Reply{}, false
}
