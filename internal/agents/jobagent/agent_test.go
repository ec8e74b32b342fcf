package jobagent

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/internal/jobs"
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

func TestListStatusResults(t *testing.T) {
	spool, err := jobs.Open(filepath.Join(t.TempDir(), "jobs"), jobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(spool, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spool.Start(jobs.Spec{ID: "abc123", Agent: "puppet", Action: "runonce", Argv: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}}, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := spool.Get("abc123")
		if err != nil {
			t.Fatal(err)
		}
		if st.Status == jobs.Finished {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job still %s", st.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
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
