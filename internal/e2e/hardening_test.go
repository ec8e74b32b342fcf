package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/marionette/mco/client"
	"github.com/marionette/mco/filter"
	"github.com/marionette/mco/internal/config"
	"github.com/marionette/mco/internal/natstest"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/poll"
	"github.com/marionette/mco/protocol"
)

// The tests in this file perform the attacks of a red-team review (issue 11)
// against real daemons and fail if one comes back; docs/security.md states
// the guarantees they hold.

// TestCompoundPolicyColumnsDeny: a 5-field deny rule whose classes or facts
// column is a compound expression ("one or three", "!foo=baz") must deny; it
// once read them as literal names, so the rule never matched and the later
// allow let the caller in. A column that cannot be evaluated is reported by
// mco policy lint.
func TestCompoundPolicyColumnsDeny(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	bobConf := c.client("bob.mcollective")
	policyDir := filepath.Join(c.dir, "policy")
	writeFile(t, filepath.Join(policyDir, "rpcutil.policy"), "policy default deny\n"+
		"deny\tcert=bob.mcollective\tping\t*\tone or three\n"+
		"deny\tcert=bob.mcollective\tget_fact\t!foo=baz\t*\n"+
		"allow\t*\t*\t*\t*\n")
	facts := filepath.Join(c.dir, "facts.yaml")
	writeFile(t, facts, "foo: bar\n")
	classes := filepath.Join(c.dir, "classes.txt")
	writeFile(t, classes, "one\n")
	d := c.startDaemon("compound.e2e", "policy.dir = "+policyDir, "facts = "+facts, "classes = "+classes)

	for _, call := range [][]string{{"ping"}, {"get_fact", "fact=foo"}} {
		args := append([]string{"-c", bobConf, "rpc", "rpcutil"}, call...)
		r := mco(t, "", append(args, "-I", d.name, "-t", "5s")...)
		if r.code != 2 || !strings.Contains(r.stdout, "not authorized") {
			t.Errorf("bob %v: exit %d, want 2 (denied by the compound rule)\nstdout:\n%s\nstderr:\n%s", call, r.code, r.stdout, r.stderr)
		}
	}
	if r := mco(t, "", "-c", c.clientConf(), "rpc", "rpcutil", "get_fact", "fact=foo", "-I", d.name, "-t", "5s"); r.code != 0 {
		t.Errorf("alice get_fact: exit %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
	}

	bad := filepath.Join(c.dir, "bad", "service.policy")
	writeFile(t, bad, "policy default allow\ndeny\t*\t*\t*\tone or (three\n")
	r := mco(t, "", "policy", "lint", bad)
	if r.code != 1 || !strings.Contains(r.stdout+r.stderr, "service.policy:2: classes field: invalid compound expression") {
		t.Errorf("policy lint: exit %d, want 1 naming line 2's classes field\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// nodeDefaults adds what every test daemon needs now that a node is secure by
// default (a policy directory that denies, an audit log in
// /var/log/marionette, a replay file in /var/lib/marionette): unless the test configures them itself, its own
// audit log, and a policy directory of its own where agents without a policy
// file are allowed — the daemon still runs through ActionPolicy.
func nodeDefaults(dir string, extra []string) []string {
	var policy, audit, replay, puppet bool
	for _, l := range extra {
		l = strings.TrimSpace(l)
		replay = replay || strings.HasPrefix(l, "request.replay_file")
		puppet = puppet || strings.HasPrefix(l, "puppet.")
		policy = policy || strings.HasPrefix(l, "policy.")
		audit = audit || strings.HasPrefix(l, "audit.log") || strings.HasPrefix(l, "audit.disabled")
	}
	out := append([]string(nil), extra...)
	if !policy {
		out = append(out, "policy.dir = "+filepath.Join(dir, "policy"), "policy.allow_unconfigured = true")
	}
	if !audit {
		out = append(out, "audit.log = "+filepath.Join(dir, "audit.log"))
	}
	if !replay {
		out = append(out, "request.replay_file = "+filepath.Join(dir, "replay.seen"))
	}
	if !puppet {
		// Puppet is installed here: a node taking its classes from
		// Puppet forks `puppet config print` once at start (a second of
		// CPU), which tests that do not use Puppet need not pay.
		out = append(out, "puppet.classes = false")
	}
	return out
}

// minimalNode starts `mco server run` with only broker and TLS keys plus
// extra, waits until it is ready and returns it.
func minimalNode(t *testing.T, c *collective, name string, extra ...string) *process {
	t.Helper()
	if _, err := c.store.Issue(pki.RoleNode, name, nil); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(c.dir, "nodes", name)
	conf := filepath.Join(dir, "server.conf")
	writeFile(t, conf, fmt.Sprintf("broker = %s\ntls.ca = %s\ntls.cert = %s\ntls.key = %s\nagents.disabled = package, service\nrequest.replay_file = %s\n%s\n",
		c.broker.URL(), c.store.CACertPath(), c.store.CertPath(name), c.store.KeyPath(name), filepath.Join(dir, "replay.seen"), strings.Join(extra, "\n")))
	p := startProcess(t, "daemon "+name, dir, "server", "run", "-c", conf, "--log-level", "debug")
	p.waitStderr(t, "node ready")
	return p
}

// pingStatus sends one directed ping and returns the node's reply status.
func pingStatus(t *testing.T, cl *client.Client, node string) protocol.StatusCode {
	t.Helper()
	var got *client.Result
	for range 20 {
		_, _ = cl.Call(context.Background(), client.Request{Agent: "rpcutil", Action: "ping", Targets: []string{node}, Timeout: time.Second},
			func(r client.Result) { got = &r })
		if got != nil {
			return got.Status
		}
	}
	t.Fatalf("%s never replied to a ping", node)
	return 0
}

// TestSecureByDefault: a server.conf with only the broker and TLS keys denies
// every request (the packaged policy directory has no policy for it) and
// audits it; authorization and audit are off only when said so, with a
// warning at start.
func TestSecureByDefault(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(filepath.Join(config.DefaultPolicyDir, "rpcutil.policy")); err == nil {
		t.Fatalf("%s/rpcutil.policy exists on this machine: the default-deny test needs it absent", config.DefaultPolicyDir)
	}
	c := newCollective(t, collectiveOptions{})
	alice := c.connect(c.clientConf())

	// Only the audit and replay paths are moved out of /var for the test.
	auditLog := filepath.Join(c.dir, "default.audit.log")
	p := minimalNode(t, c, "default.e2e", "audit.log = "+auditLog)
	if st := pingStatus(t, alice, "default.e2e"); st != protocol.Aborted {
		t.Fatalf("minimal config: ping status %d, want %d (denied)", st, protocol.Aborted)
	}
	rec := waitForAudit(t, auditLog, func(m map[string]any) bool { return m["kind"] == "request" && m["action"] == "ping" })
	if rec["decision"] != "deny" {
		t.Errorf("audit decision %v, want deny", rec["decision"])
	}
	if !strings.Contains(p.stderrText(), "policy directory unreadable") {
		t.Errorf("no warning about the missing policy directory:\n%s", p.stderrText())
	}

	p = minimalNode(t, c, "open.e2e", "policy.disabled = true", "audit.disabled = true")
	if st := pingStatus(t, alice, "open.e2e"); st != protocol.OK {
		t.Fatalf("policy.disabled: ping status %d, want OK", st)
	}
	for _, w := range []string{"policy.disabled = true: authorization is off", "audit.disabled = true: requests are not audited"} {
		if !strings.Contains(p.stderrText(), w) {
			t.Errorf("no start warning %q:\n%s", w, p.stderrText())
		}
	}

	// Contradictions are refused, naming the file.
	dir := filepath.Join(c.dir, "nodes", "bad.e2e")
	conf := filepath.Join(dir, "server.conf")
	writeFile(t, conf, fmt.Sprintf("broker = %s\ntls.ca = %s\ntls.cert = x\ntls.key = y\npolicy.disabled = true\npolicy.dir = /tmp\n", c.broker.URL(), c.store.CACertPath()))
	if r := mco(t, "", "server", "run", "-c", conf); r.code == 0 || !strings.Contains(r.stderr, "policy.disabled = true and policy.dir are both set") {
		t.Errorf("contradictory config: exit %d\n%s", r.code, r.stderr)
	}
}

// signed builds a signed rpcutil ping for node from rc's certificate, changed
// by edit, and returns its id and the exact envelope bytes.
func (rc *rawCaller) signed(t *testing.T, edit func(*protocol.Request)) (string, []byte) {
	t.Helper()
	var b [16]byte
	_, _ = rand.Read(b[:])
	req := protocol.Request{
		Protocol: protocol.RequestProtocol, ID: hex.EncodeToString(b[:]), Sender: rc.id.Name(), CallerID: "cert=" + rc.id.Name(),
		Collective: "mcollective", Agent: "rpcutil", Action: "ping",
		Time: time.Now().UnixNano(), TTL: 600, ProcessResults: true,
	}
	if edit != nil {
		edit(&req)
	}
	if req.ReplyTo == "" {
		req.ReplyTo = protocol.ReplySubject(req.Collective, protocol.CallerHash(rc.id.Name()), "r"+hex.EncodeToString(b[:4]))
	}
	body, err := json.Marshal(&req)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := json.Marshal(&protocol.SecureRequest{Protocol: protocol.SecureRequestProtocol, Request: body, Signature: rc.id.Sign(body), Cert: rc.id.Cert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	return req.ID, msg
}

// publish sends raw bytes on subject.
func (rc *rawCaller) publish(t *testing.T, subject string, msg []byte) {
	t.Helper()
	if err := rc.nc.Publish(subject, msg); err != nil {
		t.Fatal(err)
	}
	if err := rc.nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// replyTo waits up to wait for the reply to request id.
func (rc *rawCaller) replyTo(t *testing.T, id string, wait time.Duration) (protocol.Reply, bool) {
	t.Helper()
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

// TestReplayAcrossRestartRefused: the same signed bytes, accepted once, are
// refused after the daemon is killed with SIGKILL and started again (the
// replay cache is persisted), while a fresh request is served.
func TestReplayAcrossRestartRefused(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	node := "replay.e2e"
	d := c.startDaemon(node)
	rc := newRawCaller(t, c, "mallory.mcollective")
	id, msg := rc.signed(t, nil)
	rc.publish(t, protocol.NodeSubject("mcollective", node), msg)
	if rep, ok := rc.replyTo(t, id, 10*time.Second); !ok || rep.Status != protocol.OK {
		t.Fatalf("first delivery: reply %+v, %v", rep, ok)
	}

	_ = d.cmd.Process.Kill()
	_ = d.cmd.Wait()
	c.startDaemon(node)
	rc.publish(t, protocol.NodeSubject("mcollective", node), msg)
	if n := waitDropped(t, c, c.clientConf(), node, "replayed"); n != 1 {
		t.Fatalf("replayed drops after restart = %v, want 1", n)
	}
	if rep, ok := rc.replyTo(t, id, time.Second); ok {
		t.Fatalf("the replay after restart was answered: %+v", rep)
	}
	fresh, msg2 := rc.signed(t, nil)
	rc.publish(t, protocol.NodeSubject("mcollective", node), msg2)
	if rep, ok := rc.replyTo(t, fresh, 10*time.Second); !ok || rep.Status != protocol.OK {
		t.Fatalf("fresh request after restart: reply %+v, %v", rep, ok)
	}
}

// TestHugeRequestIDsRefused: a request id of 100 KB (once stored for an hour
// before the filter was checked) is refused at decoding and counted.
func TestHugeRequestIDsRefused(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	node := "ids.e2e"
	c.startDaemon(node)
	rc := newRawCaller(t, c, "mallory.mcollective")
	for _, bad := range []string{strings.Repeat("a", 100_000), "a.b", "x y"} {
		_, msg := rc.signed(t, func(r *protocol.Request) { r.ID = bad })
		rc.publish(t, protocol.NodeSubject("mcollective", node), msg)
	}
	waitUntil(t, "3 bad_id drops", func() bool { return waitDropped(t, c, c.clientConf(), node, "bad_id") >= 3 })
}

// TestSenderIsTheSignerAndAudited: a request whose sender is not its
// signer's certname is dropped; a privileged front end acting for alice is
// audited with caller alice and signer the front end, so the two can be told
// apart.
func TestSenderIsTheSignerAndAudited(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	auditLog := filepath.Join(c.dir, "signer.log")
	node := "signer.e2e"
	c.startDaemon(node, "audit.log = "+auditLog)

	mallory := newRawCaller(t, c, "mallory.mcollective")
	_, msg := mallory.signed(t, func(r *protocol.Request) { r.Sender = "alice.mcollective" })
	mallory.publish(t, protocol.NodeSubject("mcollective", node), msg)
	if n := waitDropped(t, c, c.clientConf(), node, "sender_mismatch"); n != 1 {
		t.Fatalf("sender_mismatch drops = %v, want 1", n)
	}

	ui := newRawCaller(t, c, "ui.privileged.mcollective")
	id, msg := ui.signed(t, func(r *protocol.Request) { r.CallerID = "cert=alice.mcollective" })
	ui.publish(t, protocol.NodeSubject("mcollective", node), msg)
	if rep, ok := ui.replyTo(t, id, 10*time.Second); !ok || rep.Status != protocol.OK {
		t.Fatalf("front end for alice: %+v, %v", rep, ok)
	}
	rec := waitForAudit(t, auditLog, func(m map[string]any) bool { return m["request_id"] == id && m["kind"] == "request" })
	if rec["caller"] != "cert=alice.mcollective" || rec["signer"] != "ui.privileged.mcollective" || rec["sender"] != "ui.privileged.mcollective" {
		t.Errorf("audit of the front end's request: caller %v signer %v sender %v", rec["caller"], rec["signer"], rec["sender"])
	}
}

// TestCollectiveBoundToSubject: a client the broker restricts to
// development publishes, on a development subject, a request labelled
// production for a node in both; the node drops it (it once ran and audited
// it) and still serves the client in development.
func TestCollectiveBoundToSubject(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{BrokerCollectives: map[string][]string{"dev.mcollective": {"development"}}})
	rc := newRawCaller(t, c, "dev.mcollective") // writes dev.mcollective.conf: first
	dev := c.client("dev.mcollective", "collective = development")
	ops := c.client("ops.mcollective", "collective = production")
	node := "both.e2e"
	auditLog := filepath.Join(c.dir, "both.log")
	runDaemon(t, c, c.broker.URL(), node, ops, "collectives = production, development", "audit.log = "+auditLog)

	id, msg := rc.signed(t, func(r *protocol.Request) {
		r.Collective, r.ProcessResults, r.ReplyTo = "production", false, "x"
	})
	rc.publish(t, protocol.NodeSubject("development", node), msg)
	if n := waitDropped(t, c, ops, node, "wrong_collective"); n != 1 {
		t.Fatalf("wrong_collective drops = %v, want 1", n)
	}
	if strings.Contains(readFileT(t, auditLog), id) {
		t.Errorf("the mislabelled request was audited (so it was accepted)")
	}
	if r := mco(t, "", "-c", dev, "rpc", "rpcutil", "ping", "-I", node, "-t", "5s"); r.code != 0 {
		t.Errorf("dev in development: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func readFileT(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// TestHugeArgumentAudited: a 100 KB argument of '<' (once a 600 KB audit line, HTML-escaped,
// that could never reach the central store) is recorded by size and hash in
// a small line, and the log still verifies.
func TestHugeArgumentAudited(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	auditLog := filepath.Join(c.dir, "huge.log")
	node := "huge.e2e"
	c.startDaemon(node, "audit.log = "+auditLog)
	rc := newRawCaller(t, c, "mallory.mcollective")
	id, msg := rc.signed(t, func(r *protocol.Request) { r.Data = map[string]any{"x": strings.Repeat("<", 100_000)} })
	rc.publish(t, protocol.NodeSubject("mcollective", node), msg)
	rec := waitForAudit(t, auditLog, func(m map[string]any) bool { return m["request_id"] == id && m["kind"] == "request" })
	x, _ := rec["arguments"].(map[string]any)["x"].(map[string]any)
	if x["omitted"] != true || x["bytes"] != float64(100_002) || len(fmt.Sprint(x["sha256"])) != 64 {
		t.Fatalf("argument recorded as %v, want its size and hash", rec["arguments"])
	}
	for _, line := range strings.Split(readFileT(t, auditLog), "\n") {
		if len(line) > 20_000 {
			t.Fatalf("an audit line of %d bytes", len(line))
		}
	}
	if r := mco(t, "", "audit", "verify", auditLog); r.code != 0 {
		t.Fatalf("audit verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestNodeDropsRevokedBroker: when the broker a node is connected to has its
// certificate revoked, the node (which reloads the list within a fraction of
// a second) leaves it and refuses it at every reconnect, so it serves nobody
// through it.
func TestNodeDropsRevokedBroker(t *testing.T) {
	c := newCollective(t, collectiveOptions{})
	node := "revbroker.e2e"
	d := c.startDaemon(node, "security.revocation_file = "+c.store.RevokedPath())
	alice := c.connect(c.clientConf())
	if !pingOK(alice, node) {
		t.Fatal("no ping before the revocation")
	}
	if r := mco(t, "", "pki", "revoke", "broker.e2e", "--dir", c.store.Dir); r.code != 0 {
		t.Fatalf("pki revoke: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	waitUntil(t, "the node to leave the revoked broker", func() bool { return !pingOK(alice, node) })
	stopDaemon(t, d)
	log := d.stderr.String()
	if want := "the connected broker's certificate is revoked"; !strings.Contains(log, want) {
		t.Errorf("daemon log lacks %q:\n%s", want, log)
	}
}

// TestOrphanedAgentReapedAtStart: an external agent run (and the child it
// started in its process group) left running by a daemon killed with SIGKILL
// is killed when the daemon starts again, long before its own timeout.
func TestOrphanedAgentReapedAtStart(t *testing.T) {
	c := newCollective(t, collectiveOptions{})
	lib := t.TempDir()
	pidFile := filepath.Join(t.TempDir(), "pid")
	// The agent records its pid, starts a child in its group and waits.
	writeAgent(t, lib, "lingerer", agentDDL("lingerer", "linger", 600),
		"#!/bin/sh\ncase \"$3\" in *activation*) echo '{\"activate\": true}' > \"$2\"; exit 0;; esac\n"+
			"echo $$ > "+pidFile+".tmp && mv "+pidFile+".tmp "+pidFile+"\nsleep 600 &\nwait\n")
	node := "orphans.e2e"
	d := c.startDaemon(node, "libdir = "+lib)
	cl := c.connect(c.client("alice.mcollective", "libdir = "+lib))
	go func() {
		_, _ = cl.Call(context.Background(), client.Request{Agent: "lingerer", Action: "linger", Targets: []string{node}, Timeout: 2 * time.Second}, func(client.Result) {})
	}()
	var pid int
	waitUntil(t, "the agent to start", func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		_, err = fmt.Sscan(string(b), &pid)
		return err == nil && pid > 1
	})
	_ = d.cmd.Process.Kill()
	_ = d.cmd.Wait()
	if !processAlive(pid) {
		t.Fatal("the agent died with the daemon: nothing to reap (the test needs an orphan)")
	}
	c.startDaemon(node, "libdir = "+lib)
	waitUntil(t, "the orphaned agent group to be killed", func() bool { return !processAlive(pid) })
}

// processAlive reports whether pid runs (a zombie counts as gone).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// TestTornAuditLineDoesNotStopTheDaemon: a daemon whose audit log ends in a
// partial line (a crash mid-write) starts, cutting the line and recording the
// repair in the chain; mco audit repair does the same by hand.
func TestTornAuditLineDoesNotStopTheDaemon(t *testing.T) {
	c := newCollective(t, collectiveOptions{})
	node := "torn.e2e"
	auditLog := filepath.Join(c.dir, "torn.log")
	d := c.startDaemon(node, "audit.log = "+auditLog)
	stopDaemon(t, d)
	f, err := os.OpenFile(auditLog, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString(`{"seq":99,"prev":"half a line`)
	f.Close()

	c.startDaemon(node, "audit.log = "+auditLog) // returns once it answers
	waitForAudit(t, auditLog, func(m map[string]any) bool { return m["kind"] == "repair" })
	if r := mco(t, "", "audit", "verify", auditLog); r.code != 0 {
		t.Fatalf("audit verify after the repair: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	other := filepath.Join(c.dir, "other.log")
	writeFile(t, other, readFileT(t, auditLog)+`{"seq":`)
	if r := mco(t, "", "audit", "repair", other); r.code != 0 || !strings.Contains(r.stdout, "removed a torn last line of 7 bytes") {
		t.Fatalf("audit repair: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := mco(t, "", "audit", "verify", other); r.code != 0 {
		t.Fatalf("audit verify after mco audit repair: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestForgedAuditChainCaughtBySignedCheckpoints: an attacker who edits a
// line of a node's audit log and recomputes the whole SHA-256 chain passes
// the plain mco audit verify, but not mco audit verify --ca: the node signed
// checkpoints of its chain with its own key.
func TestForgedAuditChainCaughtBySignedCheckpoints(t *testing.T) {
	c := newCollective(t, collectiveOptions{})
	node := "signed.e2e"
	auditLog := filepath.Join(c.dir, "signed.log")
	d := c.startDaemon(node, "audit.log = "+auditLog)
	for range 3 {
		if r := mco(t, "", "-c", c.clientConf(), "rpc", "rpcutil", "ping", "-I", node); r.code != 0 {
			t.Fatalf("ping: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	}
	stopDaemon(t, d) // a clean stop signs the tail
	r := mco(t, "", "audit", "verify", "--ca", c.store.CACertPath(), auditLog)
	if r.code != 0 || !strings.Contains(r.stdout, "signed by "+node) || !strings.Contains(r.stdout, "0 lines after the last checkpoint") {
		t.Fatalf("intact log: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Forge: change the first request's caller and recompute every seq/prev.
	var out []string
	prev := ""
	for i, line := range strings.Split(strings.TrimSuffix(readFileT(t, auditLog), "\n"), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["kind"] == "request" && rec["caller"] == "cert=alice.mcollective" && !strings.Contains(strings.Join(out, ""), "mallory") {
			rec["caller"] = "cert=mallory.mcollective"
		}
		delete(rec, "seq")
		delete(rec, "prev")
		body, _ := json.Marshal(rec)
		forged := fmt.Sprintf(`{"seq":%d,"prev":%q,%s`, i+1, prev, body[1:])
		sum := sha256.Sum256([]byte(forged))
		prev = hex.EncodeToString(sum[:])
		out = append(out, forged)
	}
	writeFile(t, auditLog, strings.Join(out, "\n")+"\n")
	os.Remove(auditLog + ".head")
	if r := mco(t, "", "audit", "verify", auditLog); r.code != 0 {
		t.Fatalf("the recomputed chain should fool the plain check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := mco(t, "", "audit", "verify", "--ca", c.store.CACertPath(), auditLog); r.code != 1 || !strings.Contains(r.stdout, "checkpoint invalid") {
		t.Fatalf("forged chain with --ca: exit %d, want 1 naming the checkpoint\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestDataFilterNotRunForDeniedCallerE2E: a caller the policy denies sends a
// filter with a data function (the probe that once learnt a file's size and
// hash one bit at a time); the node runs no data function for it, answers
// nothing and counts the refusal.
func TestDataFilterNotRunForDeniedCallerE2E(t *testing.T) {
	c := newCollective(t, collectiveOptions{})
	policyDir := filepath.Join(c.dir, "policy")
	allowAlice(t, policyDir, "rpcutil")
	node := "probe.e2e"
	c.startDaemon(node, "policy.dir = "+policyDir)
	rc := newRawCaller(t, c, "mallory.mcollective")
	secret := filepath.Join(c.dir, "secret")
	writeFile(t, secret, "s3cret\n")
	probe := "fstat('" + secret + "').size > 0"
	e, err := filter.ParseCompound(probe)
	if err != nil {
		t.Fatal(err)
	}
	id, msg := rc.signed(t, func(r *protocol.Request) {
		r.Filter = &filter.Filter{Compound: []*filter.Expr{e}}
		r.ReplyTo = protocol.ReplySubject("mcollective", protocol.CallerHash("mallory.mcollective"), r.ID)
	})
	rc.publish(t, protocol.NodeSubject("mcollective", node), msg)
	if n := waitDropped(t, c, c.clientConf(), node, "data_filter_denied"); n != 1 {
		t.Fatalf("data_filter_denied = %v, want 1", n)
	}
	if rep, ok := rc.replyTo(t, id, time.Second); ok {
		t.Fatalf("the denied probe was answered: %+v", rep)
	}
	// Alice, allowed, gets her answer through the same kind of filter.
	r := mco(t, "", "-c", c.clientConf(), "rpc", "rpcutil", "ping", "-S", probe, "-I", node, "-t", "5s")
	if r.code != 0 {
		t.Fatalf("alice with a data filter: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestClientRefusesRevokedBroker: a client with security.revocation_file
// will not talk to a broker whose certificate is on the list.
func TestClientRefusesRevokedBroker(t *testing.T) {
	c := newCollective(t, collectiveOptions{})
	if r := mco(t, "", "pki", "revoke", "broker.e2e", "--dir", c.store.Dir); r.code != 0 {
		t.Fatalf("pki revoke: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	conf := c.client("carol.mcollective", "security.revocation_file = "+c.store.RevokedPath())
	r := mco(t, "", "-c", conf, "ping", "-t", "1s")
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, `broker certificate "broker.e2e" is revoked`) {
		t.Fatalf("ping through a revoked broker: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestRevokedBrokerRoutesDroppedE2E: three `mco broker run` processes, each
// with a certificate of its own, form a full-mesh cluster with a node on
// each. Broker C's certificate is revoked; A and B (which read the
// revocation file; C, the attacker, does not) close the routes C already
// had, whichever side dialled them, and refuse it again when it dials back.
// Requests no longer cross to or from C, while A and B stay routed and
// their nodes keep answering.
func TestRevokedBrokerRoutesDroppedE2E(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	names := []string{"a", "b", "c"}
	routePorts, routes := natstest.MeshRoutes(t, names...)
	for _, n := range names {
		if _, err := c.store.Issue(pki.RoleBroker, "broker-"+n+".e2e", []string{"127.0.0.1"}); err != nil {
			t.Fatal(err)
		}
	}
	brokers := map[string]*runningBroker{}
	for _, n := range names {
		extra := []string{"cluster.name = e2e", fmt.Sprintf("cluster.listen = 127.0.0.1:%d", routePorts[n]),
			"cluster.routes = " + strings.Join(routes[n], ", ")}
		if n != "c" {
			extra = append(extra, "security.revocation_file = "+c.store.RevokedPath())
		}
		brokers[n] = startBrokerAs(t, c, "broker-"+n, "broker-"+n+".e2e", 0, extra...)
	}
	a, b, cc := brokers["a"], brokers["b"], brokers["c"]
	for _, br := range brokers {
		waitUntil(t, br.name+" to route to both peers", func() bool { return br.numRoutes(t) == 2 })
	}
	onA := confFor(t, c, "alice.mcollective", a.url)
	onC := confFor(t, c, "alice.mcollective", cc.url)
	for _, n := range names {
		runDaemon(t, c, brokers[n].url, "node-"+n+".e2e", onA)
	}
	alice := c.connect(onA)

	if r := mco(t, "", "pki", "revoke", "broker-c.e2e", "--dir", c.store.Dir); r.code != 0 {
		t.Fatalf("pki revoke: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	waitUntil(t, "A and B to drop their routes to C", func() bool {
		return a.numRoutes(t) == 1 && b.numRoutes(t) == 1 && cc.numRoutes(t) == 0
	})
	for _, br := range []*runningBroker{a, b} {
		br.p.waitStderr(t, "dropped the routes of a revoked broker certificate")
	}
	// C's configured routes dial again and are refused.
	a.p.waitStderr(t, "is revoked")
	if a.numRoutes(t) != 1 || b.numRoutes(t) != 1 || cc.numRoutes(t) != 0 {
		t.Fatalf("after C dialled again: routes A %d, B %d, C %d; want 1, 1, 0", a.numRoutes(t), b.numRoutes(t), cc.numRoutes(t))
	}
	waitUntil(t, "node C to stop answering through A", func() bool { return !pingOK(alice, "node-c.e2e") })
	for _, n := range []string{"node-a.e2e", "node-b.e2e"} {
		if !pingOK(alice, n) {
			t.Errorf("%s stopped answering through A", n)
		}
	}
	r := mco(t, "", "-c", onC, "ping", "-t", "2s")
	if strings.Contains(r.stdout, "node-a.e2e") || strings.Contains(r.stdout, "node-b.e2e") || !strings.Contains(r.stdout, "node-c.e2e") {
		t.Fatalf("mco ping through C: want node C only\n%s%s", r.stdout, r.stderr)
	}
}

// TestRunningLimitPerCallerE2E: one caller fills a real daemon with slow
// external agent actions (each waits for a gate file). Past the per-caller
// limit (20) every further request is answered at once with status 1 "try
// again later", audited and counted (busy), while another caller's slow
// action still starts; once the gate opens every admitted action finishes.
func TestRunningLimitPerCallerE2E(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	lib := t.TempDir()
	running := t.TempDir()
	gate := filepath.Join(t.TempDir(), "gate")
	writeAgent(t, lib, "napper", agentDDL("napper", "nap", 120),
		"#!/bin/sh\ncase \"$3\" in *activation*) echo '{\"activate\": true}' > \"$2\"; exit 0;; esac\ntouch "+running+"/$$\nwhile [ ! -e "+gate+" ]; do sleep 0.2; done\nprintf '{\"message\":\"woke\"}' >\"$2\"\n")
	node := "limited.e2e"
	c.startDaemon(node, "libdir = "+lib)
	auditLog := filepath.Join(c.dir, "nodes", node, "audit.log")
	alice := newRawCaller(t, c, "alice.mcollective")
	bob := newRawCaller(t, c, "bob.mcollective")
	nap := func(rc *rawCaller) string {
		id, msg := rc.signed(t, func(r *protocol.Request) {
			r.Agent, r.Action = "napper", "nap"
			r.ReplyTo = protocol.ReplySubject("mcollective", protocol.CallerHash(rc.id.Name()), r.ID)
		})
		rc.publish(t, protocol.NodeSubject("mcollective", node), msg)
		return id
	}
	started := func() int {
		entries, _ := os.ReadDir(running)
		return len(entries)
	}
	const limit = 20 // server.DefaultMaxRunningPerCaller
	admitted := map[string]bool{}
	for range limit {
		admitted[nap(alice)] = true
	}
	waitUntil(t, "alice's 20 actions to be running", func() bool { return started() == limit })

	over := map[string]bool{}
	for range 3 {
		over[nap(alice)] = true
	}
	for _, rep := range collectReplies(t, alice, len(over)) {
		if !over[rep.RequestID] || rep.Status != protocol.Aborted || !strings.Contains(rep.Message, "try again later") {
			t.Fatalf("alice past her limit: reply to %s status %d %q, want status 1 \"try again later\" to a refused request", rep.RequestID, rep.Status, rep.Message)
		}
	}
	bobID := nap(bob)
	waitUntil(t, "bob's action to start while alice is at her limit", func() bool { return started() == limit+1 })
	if n := waitDropped(t, c, c.client("carol.mcollective"), node, "busy"); n != 3 { // not bob or alice: their raw subscriptions would see the reply
		t.Errorf("busy = %v, want 3", n)
	}
	for id := range over {
		rec := waitForAudit(t, auditLog, func(m map[string]any) bool { return m["kind"] == "complete" && m["request_id"] == id })
		if rec["status"] != float64(protocol.Aborted) || !strings.Contains(fmt.Sprint(rec["status_message"]), "try again later") {
			t.Errorf("audit of a refused request: %v", rec)
		}
	}

	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	admitted[bobID] = true
	replies := collectReplies(t, alice, limit)
	maps.Copy(replies, collectReplies(t, bob, 1))
	for _, rep := range replies {
		if !admitted[rep.RequestID] || rep.Status != protocol.OK {
			t.Errorf("admitted action %s: status %d %q", rep.RequestID, rep.Status, rep.Message)
		}
	}
	if len(replies) != limit+1 {
		t.Errorf("%d admitted actions answered, want %d", len(replies), limit+1)
	}
}

// collectReplies reads replies to n requests from rc's subscription (in any
// order), by request id.
func collectReplies(t *testing.T, rc *rawCaller, n int) map[string]protocol.Reply {
	t.Helper()
	out := map[string]protocol.Reply{}
	for len(out) < n {
		m, err := rc.sub.NextMsg(poll.Deadline)
		if err != nil {
			t.Fatalf("%d of %d replies: %v", len(out), n, err)
		}
		var env protocol.SecureReply
		var rep protocol.Reply
		if json.Unmarshal(m.Data, &env) != nil || json.Unmarshal(env.Reply, &rep) != nil {
			t.Fatalf("undecodable reply: %s", m.Data)
		}
		if _, dup := out[rep.RequestID]; dup {
			t.Fatalf("two replies to %s", rep.RequestID)
		}
		out[rep.RequestID] = rep
	}
	return out
}

// TestMonitorLoopbackByDefaultE2E: `mco broker run` with `monitor = PORT` or
// `monitor = :PORT` listens for the unauthenticated NATS monitoring endpoint
// on 127.0.0.1 only, even when its client listener is on another address
// (nats-server alone would follow the listener); only a monitor setting that
// names a host binds elsewhere. The listening sockets are read from
// /proc/net/tcp.
func TestMonitorLoopbackByDefaultE2E(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	// 127.0.0.2 is a loopback address other than 127.0.0.1: it tells "bound
	// to 127.0.0.1" from "bound to the listener's address" without
	// listening beyond this host.
	for _, tc := range []struct {
		name, monitor string // %d is the port
		want          string
	}{
		{"port only", "%d", "127.0.0.1"},
		{"colon port", ":%d", "127.0.0.1"},
		{"named host", "127.0.0.2:%d", "127.0.0.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := natstest.FreePort(t)
			conf := filepath.Join(t.TempDir(), "broker.conf")
			writeFile(t, conf, fmt.Sprintf("listen = 127.0.0.2:0\nmonitor = %s\ntls.ca = %s\ntls.cert = %s\ntls.key = %s\n",
				fmt.Sprintf(tc.monitor, port), c.store.CACertPath(), c.store.CertPath("broker.e2e"), c.store.KeyPath("broker.e2e")))
			p := startProcess(t, "broker "+tc.name, "", "broker", "run", "-c", conf)
			p.waitStderr(t, "broker ready")
			if got := tcpListeners(t, port); !slices.Equal(got, []string{tc.want}) {
				t.Fatalf("monitor = %s listens on %v, want [%s]", tc.monitor, got, tc.want)
			}
		})
	}
}

// tcpListeners lists the addresses with a listening TCP socket on port
// (IPv4 and IPv6), from /proc/net/tcp and /proc/net/tcp6.
func tcpListeners(t *testing.T, port int) []string {
	t.Helper()
	var out []string
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(file)
		if err != nil {
			if file == "/proc/net/tcp6" && os.IsNotExist(err) {
				continue
			}
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 4 || f[3] != "0A" { // 0A: LISTEN
				continue
			}
			addr, p, ok := strings.Cut(f[1], ":")
			if n, err := strconv.ParseInt(p, 16, 32); !ok || err != nil || int(n) != port {
				continue
			}
			raw, err := hex.DecodeString(addr)
			if err != nil {
				t.Fatalf("%s: %q", file, line)
			}
			// The kernel prints each 32-bit word in host (little-endian) order.
			for i := 0; i+4 <= len(raw); i += 4 {
				raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
			}
			out = append(out, net.IP(raw).String())
		}
	}
	return out
}
