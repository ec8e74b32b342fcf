package daemon

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/marionette/mco/internal/audit"
	"github.com/marionette/mco/internal/config"
	"github.com/marionette/mco/internal/jobs"
	"github.com/marionette/mco/internal/node"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/poll"
	"github.com/marionette/mco/protocol"
)

func TestNotDetachable(t *testing.T) {
	tests := []struct {
		agent, action string
		refused       string // substring of the reason; "" allowed
	}{
		{"rpcutil", "ping", "rpcutil actions answer at once"},
		{"job", "results", "job agent"},
		{"puppet", "runonce", "puppet runonce always runs detached"},
		{"chef", "runonce", "chef runonce always runs detached"},
		{"puppet", "status", ""},
		{"package", "install", ""},
		{"napper", "nap", ""},
	}
	for _, tt := range tests {
		err := notDetachable(tt.agent, tt.action)
		if (err == nil) != (tt.refused == "") || (err != nil && !strings.Contains(err.Error(), tt.refused)) {
			t.Errorf("%s %s: %v, want %q", tt.agent, tt.action, err, tt.refused)
		}
	}
}

func waitEnded(t *testing.T, s *jobs.Spool, id string) {
	t.Helper()
	poll.Until(t, "job "+id+" to end", func() bool { st, _ := s.Get(id); return st.Status != jobs.Running })
}

// TestAuditEnded: every ended job gets one job line with its id and
// outcome, once, however often the spool is looked at.
func TestAuditEnded(t *testing.T) {
	dir := t.TempDir()
	spool, _ := jobs.Open(filepath.Join(dir, "jobs"), jobs.Options{})
	logPath := filepath.Join(dir, "audit.log")
	l, err := audit.Open(logPath, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	aud := &node.Auditor{Log: l, Node: "n1"}
	for _, spec := range []jobs.Spec{
		{ID: "ok1", Kind: jobs.KindRPC, Agent: "napper", Action: "nap", Caller: "cert=alice", Argv: []string{"true"}},
		{ID: "slow1", Kind: jobs.KindRPC, Agent: "sleeper", Action: "nap", Caller: "cert=alice", Argv: []string{"true"}},
		{ID: "noresult", Kind: jobs.KindRPC, Agent: "napper", Action: "nap", Argv: []string{"sh", "-c", "exit 3"}},
		{ID: "run1", Agent: "puppet", Action: "runonce", Argv: []string{"sh", "-c", "exit 2"}},
	} {
		if _, err := spool.Start(spec, nil); err != nil {
			t.Fatal(err)
		}
		waitEnded(t, spool, spec.ID)
	}
	_ = jobs.WriteResult(spool.JobDir("ok1"), &jobs.Result{Status: protocol.OK, Message: "OK"})
	_ = jobs.WriteResult(spool.JobDir("slow1"), &jobs.Result{Status: protocol.Aborted, Message: "timeout after 2s", TimedOut: true})
	log := slog.New(slog.DiscardHandler)
	if auditEnded(spool, aud, log) {
		t.Fatal("reported running jobs")
	}
	auditEnded(spool, aud, log) // nothing new
	b, _ := os.ReadFile(logPath)
	want := map[string]string{"ok1": "finished 0 OK", "slow1": "timeout 1 timeout after 2s",
		"noresult": "finished 5 job runner exited 3 without a result", "run1": "finished 1 exit code 2"}
	seen := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec audit.JobRecord
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Kind != audit.KindJob {
			continue
		}
		seen[rec.JobID]++
		if got := fmt.Sprintf("%s %d %s", rec.State, rec.Status, rec.StatusMessage); got != want[rec.JobID] || rec.RequestID != rec.JobID {
			t.Errorf("job %s: %q, want %q", rec.JobID, got, want[rec.JobID])
		}
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("job %s audited %d times", id, seen[id])
		}
	}
}

// TestRunJob runs detached actions of an external agent through the
// runner as the daemon starts it: the reply is recorded, and an action
// past its DDL timeout is killed and recorded as timed out.
func TestRunJob(t *testing.T) {
	dir := t.TempDir()
	st := pki.Store{Dir: filepath.Join(dir, "pki")}
	if _, err := st.Init("runner test CA"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Issue(pki.RoleNode, "node1.test", nil); err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(dir, "lib")
	agentDir := filepath.Join(lib, "agent")
	if err := os.MkdirAll(agentDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ddlFor := func(name string, timeout int) string {
		return fmt.Sprintf(`{"metadata": {"name": %q, "description": "d", "author": "a", "license": "l", "version": "1", "url": "u", "timeout": %d},
  "actions": [{"action": "go", "description": "d", "display": "always", "input": {}, "output": {"message": {"description": "m", "display_as": "Message", "type": "string"}}}]}`, name, timeout)
	}
	for name, script := range map[string]string{
		"hello":  "#!/bin/sh\n[ \"$3\" = io.choria.mcorpc.external.v1.rpc_request ] || exit 0\nprintf '{\"message\":\"hi %s\"}' \"$(sed -n 's/.*\"callerid\":\"\\([^\"]*\\)\".*/\\1/p' \"$1\")\" >\"$2\"\n",
		"sleepy": "#!/bin/sh\n[ \"$3\" = io.choria.mcorpc.external.v1.rpc_request ] || exit 0\nexec sleep 30\n",
	} {
		if err := os.WriteFile(filepath.Join(agentDir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		timeout := 10
		if name == "sleepy" {
			timeout = 1
		}
		if err := os.WriteFile(filepath.Join(agentDir, name+".json"), []byte(ddlFor(name, timeout)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "server.conf")
	body := fmt.Sprintf("broker = nats://127.0.0.1:1\ntls.ca = %s\ntls.cert = %s\ntls.key = %s\npolicy.disabled = true\naudit.disabled = true\nlibdir = %s\njobs.dir = %s\nagents.disabled = package, service\n",
		st.CACertPath(), st.CertPath("node1.test"), st.KeyPath("node1.test"), lib, filepath.Join(dir, "jobs"))
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadServer(conf)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		agent, want string
		timedOut    bool
		data        map[string]any
	}{
		{"hello", "OK hi cert=alice", false, nil},
		{"sleepy", "Aborted timeout after 1s", true, nil},
		// The runner validates the inputs again (the handler then gets
		// them typed as in the foreground): what the DDL refuses never
		// runs.
		{"hello", `Invalid Data job runner: input "bogus": unknown input for action go, which takes no inputs`, false, map[string]any{"bogus": 1.0}},
	}
	for i, tt := range tests {
		jd := filepath.Join(dir, fmt.Sprintf("job-%s-%d", tt.agent, i))
		if err := os.MkdirAll(jd, 0o700); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(&jobRequest{ID: "j" + tt.agent, Agent: tt.agent, Action: "go", CallerID: "cert=alice", Time: time.Now(), Data: tt.data, Timeout: time.Duration(map[bool]int{true: 1, false: 10}[tt.timedOut]) * time.Second})
		if err := os.WriteFile(filepath.Join(jd, jobs.RequestFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := RunJob(cfg, jd, "test", slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
		rb, err := os.ReadFile(filepath.Join(jd, jobs.ResultFile))
		if err != nil {
			t.Fatal(err)
		}
		var res jobs.Result
		if err := json.Unmarshal(rb, &res); err != nil {
			t.Fatal(err)
		}
		got := res.Status.String() + " " + res.Message
		if tt.agent == "hello" && res.Status == protocol.OK {
			got = res.Status.String() + " " + fmt.Sprint(res.Data["message"])
		}
		if got != tt.want || res.TimedOut != tt.timedOut || res.Finished.Before(res.Started) {
			t.Errorf("%s: %q timed out %v, want %q %v", tt.agent, got, res.TimedOut, tt.want, tt.timedOut)
		}
	}
}
