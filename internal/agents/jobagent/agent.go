// Package jobagent is the built-in "job" agent: it reports the detached
// jobs a node keeps in its spool (package jobs) — Puppet and Chef runs and
// anything else started detached — so that a client can collect a run's
// outcome long after the request that started it, even across daemon
// restarts. The job id is the id of the starting request, so a node's audit
// lines for the start and for every later look at the job name the same id.
package jobagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "embed"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/ddl"
	"github.com/marionette/mco/internal/jobs"
	"github.com/marionette/mco/protocol"
)

//go:embed job.json
var ddlJSON []byte

// DDLJSON returns a copy of the agent's DDL file.
func DDLJSON() []byte { return bytes.Clone(ddlJSON) }

// DDL returns the agent's DDL, freshly parsed.
func DDL() (*ddl.Agent, error) {
	d, err := ddl.Parse("jobagent/job.json", ddlJSON)
	if err != nil {
		return nil, fmt.Errorf("job agent DDL: %w", err)
	}
	return d, nil
}

// MaxOutput is how much of a job's stdout and stderr a results reply
// carries (the tail: a run's outcome is at its end).
const MaxOutput = 64 << 10

// New returns the job agent over a spool.
func New(spool *jobs.Spool, now func() time.Time) (*agent.Agent, error) {
	d, err := DDL()
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	h := handlers{spool: spool, now: now}
	a := agent.New(d)
	a.Register("list", h.list)
	a.Register("status", h.status)
	a.Register("results", h.results)
	return a, nil
}

type handlers struct {
	spool *jobs.Spool
	now   func() time.Time
}

func (h handlers) fields(st *jobs.State) map[string]any {
	command := strings.Join(st.Argv, " ")
	if st.Kind == jobs.KindRPC {
		// The runner's command line says nothing; the action does.
		command = "mco rpc " + st.Agent + " " + st.Action + " --async"
	}
	m := map[string]any{
		"id": st.ID, "agent": st.Agent, "action": st.Action, "caller": st.Caller,
		"command": command, "state": st.Status, "running": st.Status == jobs.Running,
		"exit_code": st.ExitCode, "pid": st.PID, "started": st.Created.Unix(), "finished": int64(0),
		"duration": h.now().Sub(st.Created).Seconds(),
	}
	if !st.Finished.IsZero() {
		m["finished"] = st.Finished.Unix()
		m["duration"] = st.Finished.Sub(st.Created).Seconds()
	}
	return m
}

func (h handlers) list(_ context.Context, req *agent.Request, rep *agent.Reply) {
	all, err := h.spool.List()
	if err != nil {
		rep.Fail("%v", err)
		return
	}
	onlyRunning, _ := req.Data["running"].(bool)
	out := []any{}
	for _, st := range all {
		if onlyRunning && st.Status != jobs.Running {
			continue
		}
		out = append(out, h.fields(st))
	}
	rep.Data["jobs"] = out
	rep.Data["count"] = len(out)
}

func (h handlers) get(req *agent.Request, rep *agent.Reply) (*jobs.State, bool) {
	id, _ := req.Data["id"].(string)
	st, err := h.spool.Get(id)
	if errors.Is(err, jobs.ErrNotFound) {
		rep.FailWith(protocol.Aborted, "no job %s on this node", id)
		return nil, false
	}
	if err != nil {
		rep.Fail("%v", err)
		return nil, false
	}
	return st, true
}

func (h handlers) status(_ context.Context, req *agent.Request, rep *agent.Reply) {
	st, ok := h.get(req, rep)
	if !ok {
		return
	}
	for k, v := range h.fields(st) {
		rep.Data[k] = v
	}
}

func (h handlers) results(_ context.Context, req *agent.Request, rep *agent.Reply) {
	st, ok := h.get(req, rep)
	if !ok {
		return
	}
	for k, v := range h.fields(st) {
		if _, inDDL := rep.Data[k]; inDDL {
			rep.Data[k] = v
		}
	}
	stdout, stderr, truncated, err := h.spool.Output(st.ID, MaxOutput)
	if err != nil {
		rep.Fail("%v", err)
		return
	}
	rep.Data["stdout"], rep.Data["stderr"], rep.Data["truncated"] = stdout, stderr, truncated
	if st.Status == jobs.Lost {
		rep.Fail("job %s was lost: its process ended without recording an exit code", st.ID)
		return
	}
	if st.Kind != jobs.KindRPC || st.Status != jobs.Finished {
		return
	}
	res, err := h.spool.Result(st.ID)
	if err != nil {
		rep.Fail("job %s ended without a result: its runner exited %d (see its stderr)", st.ID, st.ExitCode)
		return
	}
	data := res.Data
	if data == nil {
		data = map[string]any{}
	}
	rep.Data["reply"], rep.Data["reply_status"], rep.Data["reply_message"], rep.Data["timed_out"] = data, int(res.Status), res.Message, res.TimedOut
}
