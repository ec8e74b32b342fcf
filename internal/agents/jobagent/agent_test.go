package jobagent

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/internal/jobs"
	"github.com/marionette/mco/internal/poll"
)

func TestDDLLoads(t *testing.T) {
	d, err := DDL()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"list", "status", "results"} {
		if d.Action(a) == nil {
			t.Errorf("action %s missing", a)
		}
	}
}

func call(t *testing.T, a *agent.Agent, action string, data map[string]any) *agent.Reply {
	t.Helper()
	act := a.DDL.Action(action)
	in, err := act.ValidateInputs(data)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := a.Handler(action)
	rep := &agent.Reply{Data: act.OutputDefaults()}
	h(context.Background(), &agent.Request{ID: "r1", Data: in}, rep)
	return rep
}

// newTestAgent is the job agent over a new spool in a temporary directory.
func newTestAgent(t *testing.T) (*jobs.Spool, *agent.Agent) {
	t.Helper()
	spool, err := jobs.Open(filepath.Join(t.TempDir(), "jobs"), jobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(spool, nil)
	if err != nil {
		t.Fatal(err)
	}
	return spool, a
}

func TestListStatusResults(t *testing.T) {
	spool, a := newTestAgent(t)
	if _, err := spool.Start(jobs.Spec{ID: "abc123", Agent: "puppet", Action: "runonce", Argv: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}}, nil); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "job abc123 to finish", func() bool {
		st, err := spool.Get("abc123")
		if err != nil {
			t.Fatal(err)
		}
		return st.Status == jobs.Finished
	})
	rep := call(t, a, "results", map[string]any{"id": "abc123"})
	if rep.Status != 0 || rep.Data["stdout"] != "out\n" || rep.Data["stderr"] != "err\n" || rep.Data["exit_code"] != 3 || rep.Data["state"] != jobs.Finished {
		t.Fatalf("results: %d %s %v", rep.Status, rep.Message, rep.Data)
	}
	rep = call(t, a, "list", map[string]any{})
	if rep.Data["count"] != 1 {
		t.Fatalf("list: %v", rep.Data)
	}
	rep = call(t, a, "status", map[string]any{"id": "nope"})
	if rep.Status == 0 {
		t.Fatalf("unknown job: %v", rep.Data)
	}
}

// TestResultsOfAnAsyncAction: a detached action's recorded reply is in
// results; one that ended without a result fails clearly.
func TestResultsOfAnAsyncAction(t *testing.T) {
	spool, a := newTestAgent(t)
	for _, id := range []string{"withresult", "without"} {
		if _, err := spool.Start(jobs.Spec{ID: id, Kind: jobs.KindRPC, Agent: "napper", Action: "nap", Argv: []string{"true"}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := jobs.WriteResult(spool.JobDir("withresult"), &jobs.Result{Status: 1, Message: "timeout after 2s", TimedOut: true,
		Data: map[string]any{"message": "partial"}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"withresult", "without"} {
		poll.Until(t, "job "+id+" to finish", func() bool { st, _ := spool.Get(id); return st.Status == jobs.Finished })
	}
	rep := call(t, a, "results", map[string]any{"id": "withresult"})
	reply, _ := rep.Data["reply"].(map[string]any)
	if rep.Status != 0 || rep.Data["reply_status"] != 1 || rep.Data["reply_message"] != "timeout after 2s" || rep.Data["timed_out"] != true || reply["message"] != "partial" {
		t.Fatalf("results: %d %q %v", rep.Status, rep.Message, rep.Data)
	}
	if rep.Data["command"] != nil {
		t.Errorf("results has a command field: %v", rep.Data["command"])
	}
	if st := call(t, a, "status", map[string]any{"id": "withresult"}); st.Data["command"] != "mco rpc napper nap --async" {
		t.Errorf("status command %q", st.Data["command"])
	}
	rep = call(t, a, "results", map[string]any{"id": "without"})
	if rep.Status == 0 || rep.Message != "job without ended without a result: its runner exited 0 (see its stderr)" {
		t.Fatalf("results without a result: %d %q", rep.Status, rep.Message)
	}
}
