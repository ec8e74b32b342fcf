package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// asyncStart is mco rpc --async --json's document.
type asyncStart struct {
	JobID      string   `json:"job_id"`
	Started    []string `json:"started"`
	NotStarted []struct {
		Sender     string `json:"sender"`
		Statuscode int    `json:"statuscode"`
		Statusmsg  string `json:"statusmsg"`
	} `json:"not_started"`
	NoResponse []string `json:"no_response"`
}

func decodeAsync(t *testing.T, r result) asyncStart {
	t.Helper()
	var out asyncStart
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("mco rpc --async --json: not JSON (%v): exit %d\n%s\n%s", err, r.code, r.stdout, r.stderr)
	}
	return out
}

// jobResults is mco job results --json's document: a call's replies and
// the count of nodes that know no such job.
type jobResults struct {
	jsonCall
	Unknown int `json:"nodes_without_job"`
}

// startAsync runs `mco rpc ARGS --async -I node --json` with conf and
// returns the job id, failing the test unless the job started on node alone.
func startAsync(t *testing.T, conf, node string, args ...string) string {
	t.Helper()
	argv := append(append([]string{"-c", conf, "rpc"}, args...), "--async", "-I", node, "--json")
	r := mco(t, "", argv...)
	out := decodeAsync(t, r)
	if r.code != 0 || out.JobID == "" || len(out.Started) != 1 || out.Started[0] != node {
		t.Fatalf("rpc %v --async: exit %d\n%s\n%s", args, r.code, r.stdout, r.stderr)
	}
	return out.JobID
}

// waitJobResults runs `mco job results ID --wait -I node --json` with conf
// and returns its document, failing the test unless mco exits with code and
// gives one reply.
func waitJobResults(t *testing.T, conf, node, id string, code int) jobResults {
	t.Helper()
	r := mco(t, "", "-c", conf, "job", "results", id, "--wait", "--interval", "200ms", "-I", node, "--json")
	var res jobResults
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != code || len(res.Replies) != 1 {
		t.Fatalf("job results: exit %d %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	return res
}

// auditLines returns the audit log's records naming job id.
func auditLines(t *testing.T, path, id string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(string(data), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["job_id"] == id {
			out = append(out, m)
		}
	}
	return out
}

// TestAsyncActionSurvivesDaemonRestart: mco rpc --async runs an external
// agent's action as a detached job; the daemon is killed mid-run and
// started again; mco job results --wait then shows the action's real reply,
// rendered with its DDL, and the node's audit log ties the request, its
// start and the job's end together by the job id. Around it: a second
// identical run is refused while the first runs, a caller the policy
// denies starts nothing (and is audited), actions that cannot run detached
// are refused, a built-in Go agent runs detached through the runner too, a
// job past its DDL timeout is killed and recorded as timed out, and bad or
// unknown job ids get clear errors.
func TestAsyncActionSurvivesDaemonRestart(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	gate := filepath.Join(c.dir, "gate")
	libdir := t.TempDir()
	writeAgent(t, libdir, "napper", agentDDL("napper", "nap", 60),
		"#!/bin/sh\nwhile [ ! -e "+gate+" ]; do sleep 0.05; done\nprintf '{\"message\":\"woke up past the gate as %s\"}\\n' \"$(id -un)\" >\"$2\"\n")
	writeAgent(t, libdir, "sleeper", agentDDL("sleeper", "nap", 2),
		"#!/bin/sh\nsleep 30\n")
	policyDir := filepath.Join(c.dir, "policy")
	writeFile(t, filepath.Join(policyDir, "rpcutil.policy"), "policy default allow\n")
	allowAlice(t, policyDir, "napper", "sleeper", "job", "package")
	node := "async.e2e"
	nodeDir := filepath.Join(c.dir, "nodes", node)
	auditLog := filepath.Join(nodeDir, "audit.log")
	spool := filepath.Join(nodeDir, "jobs")
	lines := []string{"libdir = " + libdir, "policy.dir = " + policyDir, "audit.log = " + auditLog, "jobs.dir = " + spool}
	d := c.startDaemon(node, lines...)
	conf := c.client("alice.mcollective", "libdir = "+libdir)
	bob := c.client("bob.mcollective", "libdir = "+libdir)

	id := startAsync(t, conf, node, "napper", "nap")
	r := mco(t, "", "-c", conf, "job", "status", id, "-I", node)
	if r.code == 0 || !strings.Contains(r.stdout, "running") {
		t.Fatalf("job status while it runs: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	t.Run("an identical second run is refused", func(t *testing.T) {
		r := mco(t, "", "-c", conf, "rpc", "napper", "nap", "--async", "-I", node)
		if r.code == 0 || !strings.Contains(r.stdout, "an identical job is already running: "+id) {
			t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
	})

	// The daemon dies mid-run (killed, not stopped) and comes back.
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = d.cmd.Wait()
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c.startDaemon(node, lines...)

	res := waitJobResults(t, conf, node, id, 0)
	got := res.Replies[0].Data
	reply, _ := got["reply"].(map[string]any)
	if got["state"] != "finished" || got["reply_status"] != float64(0) || !strings.HasPrefix(reply["message"].(string), "woke up past the gate") {
		t.Fatalf("job results after the restart: %v", got)
	}
	// The reply is on disk; the request it ran from (inputs) is not.
	if _, err := os.Stat(filepath.Join(spool, id, "result.json")); err != nil {
		t.Errorf("no result.json: %v", err)
	}
	if _, err := os.Stat(filepath.Join(spool, id, "request.json")); !os.IsNotExist(err) {
		t.Errorf("request.json left in the spool: %v", err)
	}
	r = mco(t, "", "-c", conf, "job", "results", id, "-I", node)
	if r.code != 0 || !strings.Contains(r.stdout, "Message: woke up past the gate") || !strings.Contains(r.stdout, "(napper nap) finished") {
		t.Fatalf("job results as text: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	t.Run("audit lines carry the job id", func(t *testing.T) {
		waitForAudit(t, auditLog, func(m map[string]any) bool { return m["kind"] == "job" && m["job_id"] == id })
		var kinds []string
		for _, m := range auditLines(t, auditLog, id) {
			kinds = append(kinds, m["kind"].(string))
			switch m["kind"] {
			case "request":
				if m["decision"] != "allow" || m["agent"] != "napper" || m["request_id"] != id {
					t.Errorf("request line: %v", m)
				}
			case "complete":
				if m["status"] != float64(0) || m["status_message"] != "started job "+id {
					t.Errorf("complete line: %v", m)
				}
			case "job":
				if m["state"] != "finished" || m["status"] != float64(0) || m["caller"] != "cert=alice.mcollective" {
					t.Errorf("job line: %v", m)
				}
			}
		}
		if strings.Join(kinds, ",") != "request,complete,job" {
			t.Fatalf("audit lines of job %s: %v", id, kinds)
		}
	})

	t.Run("a denied caller starts nothing", func(t *testing.T) {
		r := mco(t, "", "-c", bob, "rpc", "napper", "nap", "--async", "-I", node, "--json")
		out := decodeAsync(t, r)
		if r.code == 0 || len(out.Started) != 0 || len(out.NotStarted) != 1 || !strings.Contains(out.NotStarted[0].Statusmsg, "not authorized") {
			t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		var decision string
		for _, m := range auditLines(t, auditLog, out.JobID) {
			if m["kind"] == "request" {
				decision, _ = m["decision"].(string)
			}
		}
		if decision != "deny" {
			t.Fatalf("no denied request line with job id %s in the audit log", out.JobID)
		}
		if _, err := os.Stat(filepath.Join(spool, out.JobID)); !os.IsNotExist(err) {
			t.Fatalf("a job directory exists for the denied request: %v", err)
		}
	})

	t.Run("actions that cannot run detached are refused", func(t *testing.T) {
		r := mco(t, "", "-c", conf, "rpc", "rpcutil", "ping", "--async", "-I", node)
		if r.code == 0 || !strings.Contains(r.stdout, "cannot run detached") {
			t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		r = mco(t, "", "-c", conf, "rpc", "napper", "nap", "--async", "--no-results", "-I", node)
		if r.code != 1 || !strings.Contains(r.stderr, "--async needs the replies") {
			t.Fatalf("--async --no-results: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("a built-in agent runs detached", func(t *testing.T) {
		res := waitJobResults(t, conf, node, startAsync(t, conf, node, "package", "status", "package=dpkg"), 0)
		reply, _ := res.Replies[0].Data["reply"].(map[string]any)
		if v, _ := reply["version"].(string); v == "" {
			t.Fatalf("package status run detached: %v", res.Replies[0].Data)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		jobID := startAsync(t, conf, node, "sleeper", "nap")
		got := waitJobResults(t, conf, node, jobID, 1).Replies[0].Data
		if got["timed_out"] != true || got["reply_message"] != "timeout after 2s" || got["reply_status"] != float64(1) {
			t.Fatalf("timed-out job: %v", got)
		}
		r := mco(t, "", "-c", conf, "job", "results", jobID, "-I", node)
		if r.code != 1 || !strings.Contains(r.stdout, "timed out") {
			t.Fatalf("as text: exit %d\n%s", r.code, r.stdout)
		}
		waitForAudit(t, auditLog, func(m map[string]any) bool {
			return m["kind"] == "job" && m["job_id"] == jobID && m["state"] == "timeout"
		})
		// Killed at its timeout, with its process group: nothing of the
		// agent's run is left.
		if n := processesRunning(filepath.Join(libdir, "agent", "sleeper")); n != 0 {
			t.Fatalf("%d processes of the timed-out agent still run", n)
		}
	})

	t.Run("bad and unknown job ids", func(t *testing.T) {
		r := mco(t, "", "-c", conf, "job", "results", "../etc", "-I", node)
		if r.code != 1 || !strings.Contains(r.stderr, `"../etc" is not a job id`) {
			t.Fatalf("bad id: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		r = mco(t, "", "-c", conf, "job", "results", "deadbeef", "-I", node)
		if r.code != 1 || !strings.Contains(r.stdout, "No node knows job deadbeef") {
			t.Fatalf("unknown id: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
	})

}

// processesRunning counts the processes whose command line contains s.
func processesRunning(s string) int {
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	n := 0
	for _, f := range dirs {
		if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), s) {
			n++
		}
	}
	return n
}
