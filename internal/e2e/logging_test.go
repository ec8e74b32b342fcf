package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// needTool returns the path of an external tool; CI installs every tool
// (.ci/run), so there a missing one fails instead of skipping.
func needTool(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed: .ci/run must install it", tool)
		}
		t.Skipf("%s is not installed", tool)
	}
	return p
}

// jsonRecords parses a JSON-lines log file; every line must be a record.
func jsonRecords(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%s:%d is not a JSON record: %q", path, i+1, line)
		}
		out = append(out, m)
	}
	return out
}

// TestLogsAndAuditRotateWithLogrotate runs a real daemon with log.format =
// json and log.file, drops a forged request (logged once, with its reason),
// rotates the logs twice with the real logrotate (compress, delaycompress,
// postrotate SIGHUP, as the packaged /etc/logrotate.d/marionette does), and
// checks that `mco audit verify` sees the rotated and gzip'ed audit files as
// one intact chain and names the file and line of an edit.
func TestLogsAndAuditRotateWithLogrotate(t *testing.T) {
	t.Parallel()
	logrotate := needTool(t, "logrotate")
	c := newCollective(t, collectiveOptions{})
	dir := filepath.Join(c.dir, "nodes", "node1.e2e")
	serverLog := filepath.Join(dir, "server.log")
	auditLog := filepath.Join(dir, "audit.log")
	d := c.startDaemon("node1.e2e", "log.format = json", "log.file = "+serverLog)
	if strings.TrimSpace(d.stderr.String()) != "" {
		t.Errorf("with log.file the daemon still wrote to stderr:\n%s", d.stderr.String())
	}

	ping := func() {
		t.Helper()
		if r := mco(t, "", "-c", c.clientConf(), "rpc", "rpcutil", "ping", "-I", "node1.e2e"); r.code != 0 {
			t.Fatalf("rpc ping: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	}
	ping()

	// A request signed by mallory claiming to be bob is dropped: one log
	// record, with the reason.
	rc := newRawCaller(t, c, "mallory.mcollective")
	id := rc.send(t, "node1.e2e", "cert=bob.mcollective")
	var drops []map[string]any
	waitUntil(t, "the drop in "+serverLog, func() bool {
		drops = nil
		for _, rec := range jsonRecords(t, serverLog) {
			if rec["msg"] == "request dropped" && strings.Contains(fmt.Sprint(rec["detail"]), id) {
				drops = append(drops, rec)
			}
		}
		return len(drops) > 0
	})
	ping() // the drop is fully handled before this reply
	if len(drops) != 1 || drops[0]["reason"] != "caller_mismatch" || drops[0]["level"] != "WARN" {
		t.Errorf("drop records for %s: %v, want one WARN with reason caller_mismatch", id, drops)
	}

	conf := filepath.Join(c.dir, "logrotate.conf")
	writeFile(t, conf, fmt.Sprintf(`%s/*.log {
	rotate 5
	compress
	delaycompress
	missingok
	create
	sharedscripts
	postrotate
		kill -HUP %d
	endscript
}
`, dir, d.cmd.Process.Pid))
	if err := os.Chmod(conf, 0o644); err != nil {
		t.Fatal(err)
	}
	rotations := 0
	rotateNow := func() {
		t.Helper()
		rotations++
		out, err := exec.Command(logrotate, "-f", "-s", filepath.Join(c.dir, "logrotate.state"), conf).CombinedOutput()
		if err != nil {
			t.Fatalf("logrotate: %v\n%s", err, out)
		}
		// The daemon says so in the new log file once it reopened both.
		waitUntil(t, "the reopen after rotation", func() bool {
			data, _ := os.ReadFile(serverLog)
			return bytes.Contains(data, []byte("log files reopened on SIGHUP"))
		})
	}
	rotateNow()
	ping()
	ping()
	rotateNow()
	ping()

	for _, f := range []string{serverLog, serverLog + ".1", serverLog + ".2.gz", auditLog, auditLog + ".1", auditLog + ".2.gz"} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("after two rotations: %v", err)
		}
	}
	jsonRecords(t, serverLog+".1")

	// What the shell makes of audit.log*: the head file is in it too.
	files := []string{auditLog, auditLog + ".1", auditLog + ".2.gz"}
	glob, err := filepath.Glob(auditLog + "*")
	if err != nil || len(glob) != 4 {
		t.Fatalf("audit.log* = %v, want the three logs and the head file", glob)
	}
	r := mco(t, "", append([]string{"audit", "verify"}, glob...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "chain intact across 3 files") {
		t.Fatalf("audit verify audit.log*: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The live file alone does not start at seq 1: verify says which
	// rotated files are missing instead of passing it.
	r = mco(t, "", "audit", "verify", auditLog)
	if r.code != 1 || !strings.Contains(r.stdout, "rotated files not given") {
		t.Errorf("audit verify of the live file alone: exit %d\n%s", r.code, r.stdout)
	}

	// Edit the second line of the oldest, compressed file.
	gz := auditLog + ".2.gz"
	raw, err := os.ReadFile(gz)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var plain bytes.Buffer
	if _, err := plain.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(plain.String(), "\n")
	if len(lines) < 3 {
		t.Fatalf("%s has %d lines", gz, len(lines))
	}
	lines[0] = strings.Replace(lines[0], `"agent":"rpcutil"`, `"agent":"rpcutiX"`, 1)
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write([]byte(strings.Join(lines, "")))
	zw.Close()
	if err := os.WriteFile(gz, zb.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	r = mco(t, "", append([]string{"audit", "verify"}, files...)...)
	if r.code != 1 || !strings.Contains(r.stdout, gz+": audit chain broken at line 2 ") {
		t.Errorf("audit verify after an edit in %s: exit %d\n%s%s", gz, r.code, r.stdout, r.stderr)
	}
}

// TestBrokerLogFileReopenedOnSIGHUP: `mco broker run` with log.file and
// log.format = json writes JSON records there and, after the file is moved
// away and SIGHUP arrives, carries on in a new file at the same path.
func TestBrokerLogFileReopenedOnSIGHUP(t *testing.T) {
	c := newCollective(t, collectiveOptions{})
	logFile := filepath.Join(c.dir, "broker-log", "broker.log")
	conf := filepath.Join(c.dir, "broker-log.conf")
	writeFile(t, conf, fmt.Sprintf("listen = 127.0.0.1:0\ntls.ca = %s\ntls.cert = %s\ntls.key = %s\nlog.format = json\nlog.file = %s\n",
		c.store.CACertPath(), c.store.CertPath("broker.e2e"), c.store.KeyPath("broker.e2e"), logFile))
	if err := os.MkdirAll(filepath.Dir(logFile), 0o755); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, "broker", "", "broker", "run", "-c", conf)
	contains := func(path, msg string) bool {
		data, _ := os.ReadFile(path)
		return bytes.Contains(data, []byte(`"msg":"`+msg+`"`))
	}
	waitUntil(t, "broker ready in "+logFile, func() bool {
		if p.exited() {
			t.Fatalf("broker exited:\n%s", p.stderrText())
		}
		return contains(logFile, "broker ready")
	})
	if err := os.Rename(logFile, logFile+".1"); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the reopened broker log", func() bool { return contains(logFile, "log files reopened on SIGHUP") })
	jsonRecords(t, logFile)
	if recs := jsonRecords(t, logFile+".1"); len(recs) == 0 {
		t.Error("the rotated broker log is empty")
	}
	if p.exited() {
		t.Fatalf("broker exited on SIGHUP:\n%s", p.stderrText())
	}
}
