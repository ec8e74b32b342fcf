package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/ddl"
	"github.com/marionette/mco/filter"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/protocol"
)

// request is a request on its way through the pipeline.
type request struct {
	// dataCtx bounds the data plugin calls made for this request (see
	// Options.DataBudget); created on first use, cancelled when Handle returns.
	dataCtx    context.Context
	dataCancel context.CancelFunc
	req        *protocol.Request
	subject    string // the subject it arrived on; "" from Handle (tests)
	caller     string // certname of the verified signer
	received   time.Time
	agent      *agent.Agent
	action     *ddl.Action
	decision   Decision
}

// Handle runs one raw message through the pipeline. It never panics on bad
// input and never blocks on a running action: once accepted, the action runs
// on its own goroutine. It is for tests and benchmarks, which have no
// subject: the check that a request's collective is the one of the subject
// it arrived on is skipped (the node's subscriptions use HandleMsg).
func (s *Server) Handle(data []byte) { s.handle("", data, false) }

// HandleMsg is Handle for a message that arrived on subject: a request is
// accepted only for the collective the subject belongs to.
func (s *Server) HandleMsg(subject string, data []byte) { s.handle(subject, data, false) }

// handle runs the pipeline. inline allows running the action on the calling
// goroutine: broadcast subscriptions (one per agent) allow it for quick
// actions (agent.Agent.RegisterQuick), so that under load every node's reply follows
// its verification directly instead of queueing behind every other node's
// work. Directed requests share one subscription for all agents, and slow
// agents must not hold up their own later requests: both get a goroutine.
func (s *Server) handle(subject string, data []byte, inline bool) {
	s.stats.Total.Add(1)
	r := &request{received: s.now(), subject: subject}
	defer func() {
		if r.dataCancel != nil {
			r.dataCancel()
		}
	}()
	var err error
	if r.req, r.caller, err = s.decodeAndAuthenticate(data); err != nil {
		return
	}
	if !s.checkFreshness(r) {
		return
	}
	if !s.matchFilter(r) {
		return
	}
	if !s.resolveAgent(r) {
		return
	}
	if !s.authorize(r) {
		return
	}
	if !s.auditRequest(r) {
		return
	}
	if !s.validateInput(r) {
		return
	}
	s.stats.Passed.Add(1)
	s.wg.Add(1)
	if inline && r.agent.Quick(r.req.Action) {
		s.run(r)
		return
	}
	go s.run(r)
}

// decodeAndAuthenticate is steps 1 and 2: size and envelope checks, then the
// signature over the exact request bytes by a trusted client certificate, and
// the caller id that certificate may claim.
func (s *Server) decodeAndAuthenticate(data []byte) (*protocol.Request, string, error) {
	if len(data) > s.opts.MaxMessageSize {
		return nil, "", s.dropf(dropOversized, "message of %d bytes exceeds the %d byte limit", len(data), s.opts.MaxMessageSize)
	}
	var env protocol.SecureRequest
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, "", s.dropf(dropMalformed, "undecodable envelope: %v", err)
	}
	if env.Protocol != protocol.SecureRequestProtocol {
		return nil, "", s.dropf(dropProtocol, "unknown envelope protocol %q", env.Protocol)
	}
	cert, err := s.opts.Verifier.Verify(env.Cert, env.Request, env.Signature, pki.RoleClient)
	if err != nil {
		s.stats.Unvalidated.Add(1)
		reason := dropSignature
		if errors.Is(err, security.ErrUntrusted) {
			reason = dropCert
		}
		return nil, "", s.dropf(reason, "%v", err)
	}
	var req protocol.Request
	if err := json.Unmarshal(env.Request, &req); err != nil {
		s.stats.Unvalidated.Add(1)
		return nil, "", s.dropf(dropMalformed, "undecodable request from %q: %v", cert.Subject.CommonName, err)
	}
	if req.Protocol != protocol.RequestProtocol {
		s.stats.Unvalidated.Add(1)
		return nil, "", s.dropf(dropProtocol, "unknown request protocol %q", req.Protocol)
	}
	if err := s.opts.Verifier.CheckCaller(cert, req.CallerID); err != nil {
		s.stats.Unvalidated.Add(1)
		return nil, "", s.dropf(dropCaller, "request %s: %v", req.ID, err)
	}
	// The sender is the client's identity, which is its certname: a front
	// end acting for alice still sends as itself, and the audit record keeps
	// both (caller and signer).
	if req.Sender != cert.Subject.CommonName {
		s.stats.Unvalidated.Add(1)
		return nil, "", s.dropf(dropSender, "request from %q claims sender %q", cert.Subject.CommonName, req.Sender)
	}
	if req.ID == "" || req.Agent == "" || req.Action == "" {
		s.stats.Unvalidated.Add(1)
		return nil, "", s.dropf(dropMalformed, "request from %q lacks an id, agent or action", cert.Subject.CommonName)
	}
	if err := protocol.CheckRequestID(req.ID); err != nil {
		// Before anything stores or logs the id in full.
		s.stats.Unvalidated.Add(1)
		return nil, "", s.dropf(dropBadID, "request from %q: %v", cert.Subject.CommonName, err)
	}
	s.stats.Validated.Add(1)
	return &req, cert.Subject.CommonName, nil
}

// checkFreshness is step 3: the request must be within its ttl (capped), not
// dated in the future beyond the skew, for one of our collectives, with a
// reply subject in that collective, and not seen before.
func (s *Server) checkFreshness(r *request) bool {
	req := r.req
	if !s.inCollective(req.Collective) {
		s.dropf(dropCollective, "request %s is for collective %q", req.ID, req.Collective)
		return false
	}
	// The broker decides who may publish in which collective by subject; a
	// request labelled for another collective than its subject's would slip
	// past that restriction.
	if sc, _, _ := strings.Cut(r.subject, "."); r.subject != "" && sc != req.Collective {
		s.dropf(dropCollective, "request %s for collective %q arrived on %s", req.ID, req.Collective, r.subject)
		return false
	}
	// Replies go only to the signer's own reply subjects, so nobody can aim
	// a fleet's replies at another client.
	if own := protocol.ReplyPrefix(req.Collective, protocol.CallerHash(r.caller)) + "."; req.ProcessResults && !strings.HasPrefix(req.ReplyTo, own) {
		s.dropf(dropReplyTo, "request %s: reply subject %q is not one of %q's (%s*)", req.ID, req.ReplyTo, r.caller, own)
		return false
	}
	if req.TTL <= 0 {
		s.dropf(dropTTL, "request %s has ttl %d", req.ID, req.TTL)
		return false
	}
	ttl := min(time.Duration(req.TTL)*time.Second, s.opts.MaxTTL)
	created := req.Created()
	if created.After(r.received.Add(s.opts.Skew)) {
		s.stats.TTLExpired.Add(1)
		s.dropf(dropFuture, "request %s from %q is dated %s in the future", req.ID, r.caller, created.Sub(r.received).Round(time.Millisecond))
		return false
	}
	if r.received.After(created.Add(ttl)) {
		s.stats.TTLExpired.Add(1)
		s.dropf(dropExpired, "request %s from %q expired %s ago", req.ID, r.caller, r.received.Sub(created.Add(ttl)).Round(time.Millisecond))
		return false
	}
	switch err := s.replay.firstSeen(r.caller, req.ID, r.received, created.Add(ttl+s.opts.Skew)); {
	case err == nil:
	case errors.Is(err, errReplayed):
		s.dropf(dropReplay, "request %s from %q was already received", req.ID, r.caller)
		return false
	case errors.Is(err, errCallerFull), errors.Is(err, errCacheFull):
		s.dropf(dropReplayFull, "request %s from %q refused: %v", req.ID, r.caller, err)
		return false
	default:
		s.log.Error("replay cache write failed: refusing requests", "err", err)
		s.dropf(dropReplayStore, "request %s from %q refused: %v", req.ID, r.caller, err)
		return false
	}
	return true
}

func (s *Server) inCollective(c string) bool {
	for _, have := range s.opts.Collectives {
		if have == c {
			return true
		}
	}
	return false
}

// matchFilter is step 4. Not matching is the normal fate of a broadcast, so it
// is counted but not logged.
func (s *Server) matchFilter(r *request) bool {
	if r.req.Filter.Match(s.view(r)) {
		return true
	}
	s.stats.Filtered.Add(1)
	return false
}

// resolveAgent finds the agent and action; unknown ones get status 2.
func (s *Server) resolveAgent(r *request) bool {
	a, ok := s.agent(r.req.Agent)
	if ok {
		r.agent = a
		r.action = a.DDL.Action(r.req.Action)
		if _, has := a.Handler(r.req.Action); r.action != nil && has {
			return true
		}
	}
	msg := fmt.Sprintf("Unknown action %q for agent %q", r.req.Action, r.req.Agent)
	if !ok {
		msg = fmt.Sprintf("Unknown agent %q", r.req.Agent)
	}
	// Still audited: the caller asked this node for something.
	r.decision = Decision{Rule: "unknown agent or action"}
	if s.auditRequest(r) {
		s.auditComplete(r, protocol.UnknownAction, msg, 0)
	}
	s.reply(r, protocol.UnknownAction, msg, nil)
	return false
}

// authorize is step 5 (ActionPolicy).
func (s *Server) authorize(r *request) bool {
	if s.opts.Authorizer == nil {
		r.decision = Decision{Allowed: true, Rule: "authorization disabled"}
		return true
	}
	r.decision = s.opts.Authorizer.Authorize(r.req.CallerID, r.req.Agent, r.req.Action, s.view(r))
	if r.decision.Allowed {
		return true
	}
	s.stats.Denied.Add(1)
	s.log.Warn("request denied", "id", r.req.ID, "caller", r.req.CallerID, "agent", r.req.Agent, "action", r.req.Action, "rule", r.decision.Rule)
	if s.auditRequest(r) {
		s.auditComplete(r, protocol.Aborted, deniedMessage, 0)
	}
	s.reply(r, protocol.Aborted, deniedMessage, nil)
	return false
}

const deniedMessage = "You are not authorized to call this agent or action"

// auditRequest is step 6: every authenticated request that got this far is
// recorded, allowed or denied. A failed write refuses the request unless the
// node is configured to fail open.
func (s *Server) auditRequest(r *request) bool {
	if s.opts.Auditor == nil {
		return true
	}
	if err := s.opts.Auditor.Audit(AuditEvent{Request: r.req, Signer: r.caller, Decision: r.decision}); err != nil {
		s.stats.AuditErrors.Add(1)
		s.log.Error("audit write failed", "id", r.req.ID, "err", err)
		if !s.opts.AuditFailOpen {
			s.observe(r, protocol.UnknownError, 0)
			if r.decision.Allowed {
				s.reply(r, protocol.UnknownError, "audit log unavailable: request refused", nil)
			}
			return false
		}
	}
	return true
}

func (s *Server) auditComplete(r *request, status protocol.StatusCode, msg string, d time.Duration) {
	s.observe(r, status, d)
	if s.opts.Auditor == nil {
		return
	}
	ev := AuditEvent{Request: r.req, Signer: r.caller, Decision: r.decision, Status: status, Message: msg, Duration: d, Complete: true}
	if err := s.opts.Auditor.Audit(ev); err != nil {
		s.stats.AuditErrors.Add(1)
		s.log.Error("audit write failed", "id", r.req.ID, "err", err)
	}
}

// validateInput is step 7: the node checks inputs against the DDL again,
// whatever the client did.
func (s *Server) validateInput(r *request) bool {
	data, err := r.action.ValidateInputs(r.req.Data)
	if err != nil {
		status := protocol.InvalidData
		var ie *ddl.InputError
		if errors.As(err, &ie) && ie.Missing {
			status = protocol.MissingData
		}
		s.auditComplete(r, status, err.Error(), 0)
		s.reply(r, status, err.Error(), nil)
		return false
	}
	r.req.Data = data
	return true
}

// run is step 8: the action runs with the agent's timeout. A watchdog replies
// "timeout after Ns" when the deadline passes; a handler that overruns has
// its late result discarded. The caller is never left without an answer.
func (s *Server) run(r *request) {
	defer s.wg.Done()
	timeout := r.agent.Timeout()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	h, _ := r.agent.Handler(r.req.Action)
	areq := &agent.Request{
		ID: r.req.ID, Agent: r.req.Agent, Action: r.req.Action, CallerID: r.req.CallerID,
		Sender: r.req.Sender, Collective: r.req.Collective, Time: r.req.Created(),
		TTL: time.Duration(r.req.TTL) * time.Second, Data: r.req.Data,
	}
	rep := &agent.Reply{Data: r.action.OutputDefaults()}
	start := time.Now()
	var answered sync.Once
	timedOut := func() {
		answered.Do(func() {
			s.stats.Timeouts.Add(1)
			msg := fmt.Sprintf("timeout after %s", timeout)
			s.log.Warn("action timed out", "id", r.req.ID, "agent", r.req.Agent, "action", r.req.Action, "timeout", timeout)
			s.auditComplete(r, protocol.Aborted, msg, time.Since(start))
			s.reply(r, protocol.Aborted, msg, nil)
		})
	}
	watchdog := time.AfterFunc(timeout, timedOut)
	defer watchdog.Stop()
	func() {
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("action panicked", "agent", r.req.Agent, "action", r.req.Action, "panic", p)
				rep.FailWith(protocol.UnknownError, "action failed unexpectedly: %v", p)
			}
		}()
		h(ctx, areq, rep)
	}()
	if ctx.Err() != nil {
		// The handler gave up because its deadline passed (as handlers
		// should): a timeout, even when it returns before the watchdog fires.
		timedOut()
		return
	}
	answered.Do(func() {
		watchdog.Stop()
		s.auditComplete(r, rep.Status, rep.Message, time.Since(start))
		s.reply(r, rep.Status, rep.Message, rep.Data)
	})
}

// reply is step 9: sign the reply with the node's own key and publish it.
func (s *Server) reply(r *request, status protocol.StatusCode, msg string, data map[string]any) {
	if !r.req.ProcessResults {
		return
	}
	if status == protocol.OK && msg == "" {
		msg = "OK"
	}
	rep := protocol.Reply{
		Protocol: protocol.ReplyProtocol, RequestID: r.req.ID, Sender: s.Identity(),
		Agent: r.req.Agent, Action: r.req.Action, Status: status, Message: msg, Data: data,
		Time: s.now().UnixNano(),
	}
	body, err := json.Marshal(&rep)
	if err != nil {
		// An action put something unencodable in its reply: say so rather than vanish.
		rep.Status, rep.Message, rep.Data = protocol.UnknownError, "reply not encodable: "+err.Error(), nil
		body, _ = json.Marshal(&rep)
	}
	id := s.identity.Load()
	env, err := json.Marshal(&protocol.SecureReply{
		Protocol: protocol.SecureReplyProtocol, Reply: body,
		Signature: id.Sign(body), Cert: id.Cert.Raw,
	})
	if err != nil {
		s.log.Error("encoding reply envelope", "err", err)
		return
	}
	if err := s.publish(r.req.ReplyTo, env); err != nil {
		s.stats.PublishError.Add(1)
		s.log.Error("publishing reply", "id", r.req.ID, "err", err)
		return
	}
	s.stats.Replies.Add(1)
}

// dropf counts and logs a dropped message and returns the reason as an error.
func (s *Server) dropf(reason, format string, args ...any) error {
	s.stats.drop(reason)
	err := fmt.Errorf(format, args...)
	s.log.Warn("request dropped", "reason", reason, "detail", err.Error())
	return err
}

// nodeView is the node as filters see it.
// nodeView is the node as filters and policies see it, for one request.
type nodeView struct {
	s   *Server
	ctx context.Context // ends when the request's data budget is spent
}

// view returns the node view for a request, its data budget starting now.
func (s *Server) view(r *request) nodeView {
	if r.dataCtx == nil {
		r.dataCtx, r.dataCancel = context.WithTimeout(context.Background(), s.opts.DataBudget)
	}
	return nodeView{s: s, ctx: r.dataCtx}
}

func (v nodeView) Identity() string             { return v.s.Identity() }
func (v nodeView) Fact(path string) (any, bool) { return v.s.opts.Facts.Fact(path) }
func (v nodeView) Classes() []string            { return v.s.opts.Facts.Classes() }
func (v nodeView) Agents() []string             { return v.s.opts.Agents.AgentNames() }
func (v nodeView) Data(plugin, query string) (map[string]any, error) {
	if v.s.opts.Data == nil {
		return nil, fmt.Errorf("no data plugins on this node")
	}
	if v.ctx == nil {
		return nil, fmt.Errorf("no data budget")
	}
	if err := v.ctx.Err(); err != nil {
		return nil, fmt.Errorf("data plugin %s: the request's %s budget for data calls is spent", plugin, v.s.opts.DataBudget)
	}
	return v.s.opts.Data.Query(v.ctx, plugin, query)
}

var _ filter.Node = nodeView{}
