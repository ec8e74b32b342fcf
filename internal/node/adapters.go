package node

import (
	"context"
	"fmt"
	"time"

	"github.com/marionette/mco/filter"
	"github.com/marionette/mco/internal/audit"
	"github.com/marionette/mco/internal/authz"
	"github.com/marionette/mco/internal/server"
	"github.com/marionette/mco/protocol"
)

// The adapters below connect the pipeline's small interfaces
// (server.Authorizer, server.Auditor) to ActionPolicy and the audit log.

// Policy adapts ActionPolicy to the server's Authorizer.
type Policy struct{ A *authz.Authorizer }

// Authorize implements server.Authorizer.
func (p Policy) Authorize(ctx context.Context, caller, agent, action string, node filter.Node) server.Decision {
	d := p.A.Authorize(ctx, authz.Request{Caller: caller, Agent: agent, Action: action, Node: node})
	return server.Decision{Allowed: d.Allowed, Rule: decidingLine(d)}
}

// decidingLine names what decided, without the verdict (the audit record
// carries that separately): "FILE:LINE: reason", "FILE: reason" or "reason".
func decidingLine(d authz.Decision) string {
	switch {
	case d.File != "" && d.Line > 0:
		return fmt.Sprintf("%s:%d: %s", d.File, d.Line, d.Reason)
	case d.File != "":
		return fmt.Sprintf("%s: %s", d.File, d.Reason)
	}
	return d.Reason
}

// Auditor writes the server's audit events to a hash-chained log.
type Auditor struct {
	Log  *audit.Log
	Node string
	// Secrets names an action's inputs whose values are masked.
	Secrets func(agent, action string) []string
	Now     func() time.Time
}

// Audit implements server.Auditor.
func (a *Auditor) Audit(ev server.AuditEvent) error {
	now := time.Now()
	if a.Now != nil {
		now = a.Now()
	}
	switch {
	case ev.Complete && ev.WithRequest:
		return a.Log.Append(a.requestRecord(ev, now), a.completeRecord(ev, now))
	case ev.Complete:
		return a.Log.Append(a.completeRecord(ev, now))
	}
	return a.Log.Append(a.requestRecord(ev, now))
}

func (a *Auditor) completeRecord(ev server.AuditEvent, now time.Time) *audit.CompleteRecord {
	return &audit.CompleteRecord{
		Kind: audit.KindComplete, Time: now, RequestID: ev.Request.ID, Status: int(ev.Status),
		StatusMessage: audit.BoundMessage(ev.Message), DurationMS: ev.Duration.Milliseconds(), Node: a.Node,
		JobID: ev.JobID,
	}
}

func (a *Auditor) requestRecord(ev server.AuditEvent, now time.Time) *audit.RequestRecord {
	req := ev.Request
	decision := audit.Deny
	if ev.Decision.Allowed {
		decision = audit.Allow
	}
	var secrets []string
	if a.Secrets != nil {
		secrets = a.Secrets(req.Agent, req.Action)
	}
	return &audit.RequestRecord{
		Kind: audit.KindRequest, Time: now, RequestID: req.ID, RequestTime: req.Created(),
		Caller: req.CallerID, Signer: ev.Signer, Sender: req.Sender, Collective: req.Collective, Agent: req.Agent,
		Action: req.Action, Arguments: audit.BoundArguments(audit.MaskArguments(req.Data, secrets)), Decision: decision,
		PolicyLine: ev.Decision.Rule, Node: a.Node, JobID: ev.JobID,
	}
}

// JobEnd is what AuditJob records of a detached job that ended.
type JobEnd struct {
	ID, Agent, Action, Caller string
	State                     string // finished, timeout or lost
	ExitCode                  int
	Status                    protocol.StatusCode
	Message                   string
	Duration                  time.Duration
}

// AuditJob records a detached job's end, under its id (the id of the
// request that started it).
func (a *Auditor) AuditJob(j JobEnd) error {
	now := time.Now()
	if a.Now != nil {
		now = a.Now()
	}
	return a.Log.Append(&audit.JobRecord{
		Kind: audit.KindJob, Time: now, RequestID: j.ID, JobID: j.ID, Agent: j.Agent, Action: j.Action,
		Caller: j.Caller, State: j.State, ExitCode: j.ExitCode, Status: int(j.Status),
		StatusMessage: audit.BoundMessage(j.Message), DurationMS: j.Duration.Milliseconds(), Node: a.Node,
	})
}
