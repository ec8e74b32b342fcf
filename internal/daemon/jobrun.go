package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/internal/config"
	"github.com/marionette/mco/internal/facts"
	"github.com/marionette/mco/internal/jobs"
	"github.com/marionette/mco/internal/node"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/protocol"
)

// runnerGrace is how long past its timeout a detached action has to stop
// (an external agent's process group is killed at the timeout; a Go
// handler should return when its context ends) before the runner records
// the timeout anyway and exits, ending whatever the handler still does.
const runnerGrace = 3 * time.Second

// RunJob is `mco server job-run`: it runs the one detached action of the
// job directory dir (its request.json, written by the daemon that accepted
// the request) in this process, with the agents built from the server
// configuration cfg (file) as the daemon builds them, and records the reply
// in dir's result.json. The daemon starts it as a job of its spool; it is
// not meant to be run by hand. The action's timeout applies: a run past it
// is stopped and recorded as timed out, never left without a result.
func RunJob(cfg *config.Server, dir, version string, log *slog.Logger) error {
	started := time.Now()
	b, err := os.ReadFile(filepath.Join(dir, jobs.RequestFile))
	if err != nil {
		return fmt.Errorf("job request: %w", err)
	}
	jr := &jobRequest{}
	if err := json.Unmarshal(b, jr); err != nil {
		return fmt.Errorf("job request %s: %w", filepath.Join(dir, jobs.RequestFile), err)
	}
	// The request holds the inputs, secret ones included: they are not
	// kept in the spool for as long as the job's record is.
	if err := os.Remove(filepath.Join(dir, jobs.RequestFile)); err != nil {
		log.Warn("job request not removed", "job", jr.ID, "err", err)
	}
	timeout := jr.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	var (
		once     sync.Once
		writeErr error
	)
	finish := func(res *jobs.Result) {
		once.Do(func() {
			if res.Status == protocol.OK && res.Message == "" {
				res.Message = "OK"
			}
			res.Started, res.Finished = started, time.Now()
			writeErr = jobs.WriteResult(dir, res)
		})
	}
	timedOut := &jobs.Result{Status: protocol.Aborted, Message: fmt.Sprintf("timeout after %s", timeout), TimedOut: true}
	// Whatever hangs — building the agents, a handler deaf to its
	// context — the job ends shortly after its timeout and says so.
	hard := time.AfterFunc(timeout+runnerGrace, func() {
		finish(timedOut)
		log.Error("detached action overran its timeout: recorded as timed out", "job", jr.ID, "timeout", timeout)
		os.Exit(0)
	})
	defer hard.Stop()
	ctx, cancel := context.WithDeadline(context.Background(), started.Add(timeout))
	defer cancel()

	a, err := jobAgent(cfg, version, jr, log)
	if err != nil {
		finish(&jobs.Result{Status: protocol.UnknownError, Message: fmt.Sprintf("job runner: %v", err)})
		return writeErr
	}
	h, ok := a.Handler(jr.Action)
	act := a.DDL.Action(jr.Action)
	if !ok || act == nil {
		finish(&jobs.Result{Status: protocol.UnknownAction, Message: fmt.Sprintf("Unknown action %q for agent %q", jr.Action, jr.Agent)})
		return writeErr
	}
	// The daemon validated the inputs, but request.json's JSON round trip
	// turned its integer inputs (int64) back into float64: validated again,
	// as the foreground does with the request's JSON, the handler gets the
	// same types it would in the foreground.
	data, err := act.ValidateInputs(jr.Data)
	if err != nil {
		finish(&jobs.Result{Status: protocol.InvalidData, Message: fmt.Sprintf("job runner: %v", err)})
		return writeErr
	}
	req := &agent.Request{ID: jr.ID, Agent: jr.Agent, Action: jr.Action, CallerID: jr.CallerID, Sender: jr.Sender,
		Collective: jr.Collective, Time: jr.Time, TTL: jr.TTL, Data: data}
	rep := &agent.Reply{Data: act.OutputDefaults()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				log.Error("action panicked", "agent", jr.Agent, "action", jr.Action, "panic", p)
				rep.FailWith(protocol.UnknownError, "action failed unexpectedly: %v", p)
			}
		}()
		h(ctx, req, rep)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		select {
		case <-done:
		case <-time.After(runnerGrace):
		}
		finish(timedOut)
		return writeErr
	}
	if ctx.Err() != nil {
		// The handler gave up because its deadline passed: a timeout, as
		// in the foreground (internal/server).
		finish(timedOut)
		return writeErr
	}
	finish(&jobs.Result{Status: rep.Status, Message: rep.Message, Data: rep.Data})
	return writeErr
}

// jobAgent builds the node's agents as the daemon does (built-in agents,
// configuration management, the one external agent the job needs) and
// returns the job's.
func jobAgent(cfg *config.Server, version string, jr *jobRequest, log *slog.Logger) (*agent.Agent, error) {
	ids, err := security.LoadIdentityFiles(cfg.Cert, cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	id := ids.Current()
	verifier, err := node.NewVerifier(&cfg.Security)
	if err != nil {
		return nil, err
	}
	spool, err := OpenJobs(cfg, id.Name(), nil)
	if err != nil {
		return nil, err
	}
	cm, err := ConfigManagement(cfg, spool, CMHooks{}, log)
	if err != nil {
		return nil, err
	}
	n, err := node.Build(node.Spec{
		Identity: id, Verifier: verifier, Collectives: cfg.Collectives,
		Facts: staticFacts{facts: jr.Facts, classes: jr.Classes}, Version: version, Logger: log,
		Agents: append(BuiltinAgents(cfg, log), cm.Agents), Disabled: cfg.DisabledAgents,
		Libdirs: cfg.Libdirs, PluginConfig: cfg.PluginConfig, OnlyExternal: jr.Agent,
	})
	if err != nil {
		return nil, err
	}
	a, ok := n.Agent(jr.Agent)
	if !ok {
		return nil, fmt.Errorf("agent %q is not available on this node any more", jr.Agent)
	}
	return a, nil
}

// staticFacts are the facts and classes the daemon had when it accepted
// the job's request.
type staticFacts struct {
	facts   map[string]any
	classes []string
}

func (s staticFacts) Facts() map[string]any {
	if s.facts == nil {
		return map[string]any{}
	}
	return s.facts
}
func (s staticFacts) Fact(path string) (any, bool) { return facts.Lookup(s.Facts(), path) }
func (s staticFacts) Classes() []string            { return s.classes }
