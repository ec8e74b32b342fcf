package server

import (
	"fmt"
	"time"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/protocol"
)

// Detacher starts the action of an accepted Async request as a detached job
// (package jobs): outside the daemon's lifetime, so that a daemon restart
// during the run loses nothing. The job's id is the request's id. Detach
// returns once the job has started, or why it did not (the action cannot
// run detached, an identical job is running, the spool is unusable); the
// error's text is the caller's reply message.
type Detacher interface {
	Detach(a *agent.Agent, req *agent.Request) error
}

// jobID is the id of the job a request starts: its own id when Async.
func (r *request) jobID() string {
	if r.req != nil && r.req.Async {
		return r.req.ID
	}
	return ""
}

// detach is step 11 for an Async request: the request passed every check a
// foreground run does (authentication, replay, filter, ActionPolicy, audit,
// input validation); the job starts and the caller learns its id at once.
// The job's own end is audited later, by whoever watches the spool
// (internal/daemon), under the same id.
func (s *Server) detach(r *request) {
	defer s.wg.Done()
	start := time.Now()
	if s.opts.Jobs == nil {
		msg := "this node cannot run detached jobs (no job spool): run the action without --async"
		s.auditComplete(r, protocol.Aborted, msg, time.Since(start))
		s.reply(r, protocol.Aborted, msg, nil)
		return
	}
	err := s.opts.Jobs.Detach(r.agent, s.agentRequest(r))
	if err != nil {
		msg := fmt.Sprintf("job not started: %v", err)
		s.log.Warn("detached job not started", "id", r.req.ID, "agent", r.req.Agent, "action", r.req.Action, "err", err)
		s.auditComplete(r, protocol.Aborted, msg, time.Since(start))
		s.reply(r, protocol.Aborted, msg, nil)
		return
	}
	s.log.Info("detached job started", "job", r.req.ID, "agent", r.req.Agent, "action", r.req.Action, "caller", r.req.CallerID)
	msg := "started job " + r.req.ID
	s.auditComplete(r, protocol.OK, msg, time.Since(start))
	r.started = true
	s.reply(r, protocol.OK, msg, nil)
}

// agentRequest is what a handler (or a detached job) sees of the request.
func (s *Server) agentRequest(r *request) *agent.Request {
	return &agent.Request{
		ID: r.req.ID, Agent: r.req.Agent, Action: r.req.Action, CallerID: r.req.CallerID,
		Sender: r.req.Sender, Collective: r.req.Collective, Time: r.req.Created(),
		TTL: time.Duration(r.req.TTL) * time.Second, Data: r.inputs,
	}
}
