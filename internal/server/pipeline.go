package server

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/ddl"
	"github.com/marionette/mco/filter"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/protocol"
)

// The pipeline is a list of steps of one shape: a step looks at the request,
// fills in what it learnt (the decoded request, the caller, the agent, the
// decision) and returns nil to go on or a *refusal to stop. Counting,
// logging, auditing and replying for a refusal happen in one place, refuse,
// so every step is only its own check (crypto/tls's server handshake is the
// model). To add a step, write it and put it in its place in earlySteps or
// lateSteps; docs/architecture.md lists them.
//
// Early steps run on the message's delivery goroutine and must be cheap;
// late steps run there too unless the request's filter or the ActionPolicy
// rule that decides it needs data plugins, in which case they run on their
// own goroutine (a data call may hash a big file and must never hold up
// delivery).
func (s *Server) earlySteps() []step {
	return []step{s.decode, s.authenticate, s.checkFreshness, s.matchFilter, s.authorize}
}

func (s *Server) lateSteps() []step {
	return []step{s.authorizeWithData, s.matchDataFilter, s.resolveAgent, s.auditRequest, s.validateInput, s.admit}
}

// step is one stage of the pipeline.
type step func(r *request) *refusal

// refusal is why a step stopped a request, and what the caller is told.
//
// A refusal with a drop reason is silent towards the caller: it is counted
// under that reason (rpcutil daemon_stats "dropped") and logged. Every other
// refusal is an answer: the request is audited (with its decision so far)
// and the caller gets a signed reply with status and msg.
type refusal struct {
	reason string // drop reason; "" for an answered refusal
	status protocol.StatusCode
	msg    string
	// also is a further counter the refusal counts in (Unvalidated,
	// TTLExpired, Denied, Filtered).
	also *atomic.Int64
	// quiet skips the log line: not matching the filter is the normal fate
	// of a broadcast, and a filter mismatch is not a drop either.
	quiet bool
	// noAudit: the refusal is the audit log failing.
	noAudit bool
	// tally counts an answered refusal under a drop reason too, for the
	// refusals daemon_stats should show (busy).
	tally string
}

// drop is a refusal the caller is not told about.
func drop(reason, format string, args ...any) *refusal {
	return &refusal{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// answer is a refusal the caller is told about, audited.
func answer(status protocol.StatusCode, msg string) *refusal {
	return &refusal{status: status, msg: msg}
}

func (f *refusal) counting(c *atomic.Int64) *refusal { f.also = c; return f }

// request is a request on its way through the pipeline.
type request struct {
	// dataCtx bounds the data plugin calls made for this request (see
	// Options.DataBudget); created on first use, cancelled when the
	// pipeline is done with the request.
	dataCtx    context.Context
	dataCancel context.CancelFunc
	// deferData makes the node view refuse data plugin calls (the first
	// filter pass, before authorization); dataDeferred records that the
	// filter needed one, so its outcome is decided after authorization.
	deferData    bool
	dataDeferred bool
	// policyDeferred: ActionPolicy reached a rule with a data call on the
	// delivery goroutine; authorizeWithData decides, off it.
	policyDeferred bool

	raw      []byte
	subject  string // the subject it arrived on; "" from Handle (tests)
	req      *protocol.Request
	cert     *x509.Certificate // the verified signer's
	caller   string            // its certname
	received time.Time
	agent    *agent.Agent
	action   *ddl.Action
	decision Decision
	audited  bool // the request record is in the audit log
	// auditLater: the request record is written together with the
	// completion record (a quick action's; see auditRequest).
	auditLater bool
	// inputs are the action's inputs as validated (step validateInput);
	// req.Data stays as the caller sent it, which is what is audited.
	inputs   map[string]any
	admitted bool // holds one of its caller's running slots
	started  bool // its detached job started: the reply names it
}

func (r *request) done() {
	if r.dataCancel != nil {
		r.dataCancel()
	}
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
// actions (agent.Agent.RegisterQuick), so that under load every node's reply
// follows its verification directly instead of queueing behind every other
// node's work. Directed requests share one subscription for all agents, and
// slow agents must not hold up their own later requests: both get a goroutine.
func (s *Server) handle(subject string, data []byte, inline bool) {
	s.stats.Total.Add(1)
	r := &request{raw: data, received: s.now(), subject: subject}
	if f := s.steps(r, s.earlySteps()); f != nil {
		s.refuse(r, f)
		r.done()
		return
	}
	if r.dataDeferred || r.policyDeferred {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.finish(r, false)
		}()
		return
	}
	s.finish(r, inline)
}

// finish runs the late steps and, if they all pass, the action.
func (s *Server) finish(r *request, inline bool) {
	f := s.steps(r, s.lateSteps())
	r.done()
	if f != nil {
		s.refuse(r, f)
		return
	}
	s.stats.Passed.Add(1)
	s.wg.Add(1)
	if r.req.Async {
		go s.detach(r)
		return
	}
	if inline && r.agent.Quick(r.req.Action) {
		s.run(r)
		return
	}
	go s.run(r)
}

func (s *Server) steps(r *request, steps []step) *refusal {
	for _, st := range steps {
		if f := st(r); f != nil {
			return f
		}
	}
	return nil
}

// refuse is the one place a stopped request is counted, logged, audited and
// answered.
func (s *Server) refuse(r *request, f *refusal) {
	if f.also != nil {
		f.also.Add(1)
	}
	if f.tally != "" {
		s.stats.drop(f.tally)
	}
	if f.reason != "" {
		s.stats.drop(f.reason)
		if !f.quiet {
			s.log.Warn("request dropped", "reason", f.reason, "detail", f.msg)
		}
		return
	}
	if f.quiet {
		return
	}
	if f.status == protocol.Aborted && !r.decision.Allowed {
		s.log.Warn("request denied", "id", r.req.ID, "caller", r.req.CallerID, "signer", r.caller,
			"agent", r.req.Agent, "action", r.req.Action, "rule", r.decision.Rule)
	}
	// Nothing ran: a record left for the completion is written now, on
	// its own, and the refusal goes out whether or not it could be.
	r.auditLater = false
	if !f.noAudit && !r.audited {
		s.writeAudit(r)
	}
	if r.audited && !f.noAudit {
		s.auditComplete(r, f.status, f.msg, 0) // observes the outcome too
	} else {
		s.observe(r, f.status, 0)
	}
	s.reply(r, f.status, f.msg, nil)
}

// decode is step 1: size and envelope.
func (s *Server) decode(r *request) *refusal {
	if len(r.raw) > s.opts.MaxMessageSize {
		return drop(dropOversized, "message of %d bytes exceeds the %d byte limit", len(r.raw), s.opts.MaxMessageSize)
	}
	var env protocol.SecureRequest
	if err := protocol.DecodeSecureRequest(r.raw, &env); err != nil {
		return drop(dropMalformed, "undecodable envelope: %v", err)
	}
	if env.Protocol != protocol.SecureRequestProtocol {
		return drop(dropProtocol, "unknown envelope protocol %q", env.Protocol)
	}
	r.req = &protocol.Request{}
	r.raw = nil
	cert, err := s.opts.Verifier.Verify(env.Cert, env.Request, env.Signature, pki.RoleClient)
	if err != nil {
		reason := dropSignature
		if errors.Is(err, security.ErrUntrusted) {
			reason = dropCert
		}
		return drop(reason, "%v", err).counting(&s.stats.Unvalidated)
	}
	r.cert, r.caller = cert, cert.Subject.CommonName
	if err := json.Unmarshal(env.Request, r.req); err != nil {
		return drop(dropMalformed, "undecodable request from %q: %v", r.caller, err).counting(&s.stats.Unvalidated)
	}
	return nil
}

// authenticate is step 2: the signature over the exact request bytes by a
// trusted client certificate was checked by decode; here the request must be
// complete and claim only what that certificate may claim.
func (s *Server) authenticate(r *request) *refusal {
	req := r.req
	bad := func(reason, format string, args ...any) *refusal {
		return drop(reason, format, args...).counting(&s.stats.Unvalidated)
	}
	switch {
	case req.Protocol != protocol.RequestProtocol && req.Protocol != protocol.AsyncRequestProtocol:
		return bad(dropProtocol, "unknown request protocol %q", req.Protocol)
	case req.Async != (req.Protocol == protocol.AsyncRequestProtocol):
		// A detached job is asked for in both places or in neither: a
		// request that says so in one only was not built by our client.
		return bad(dropMalformed, "request from %q: async %v with protocol %q", r.caller, req.Async, req.Protocol)
	}
	if err := protocol.CheckRequestID(req.ID); req.ID != "" && err != nil {
		// Before anything stores or logs the id in full.
		return bad(dropBadID, "request from %q: %v", r.caller, err)
	}
	if err := s.opts.Verifier.CheckCaller(r.cert, req.CallerID); err != nil {
		return bad(dropCaller, "request %s: %v", req.ID, err)
	}
	// The sender is the client's identity, which is its certname: a front
	// end acting for alice still sends as itself, and the audit record keeps
	// both (caller and signer).
	if req.Sender != r.caller {
		return bad(dropSender, "request from %q claims sender %q", r.caller, req.Sender)
	}
	if req.ID == "" || req.Agent == "" || req.Action == "" {
		return bad(dropMalformed, "request from %q lacks an id, agent or action", r.caller)
	}
	s.stats.Validated.Add(1)
	return nil
}

// checkFreshness is step 3: the request must be for one of our collectives
// (the one of the subject it arrived on), with a reply subject of its
// signer's, within its ttl (capped), not dated in the future beyond the
// skew, and not seen before.
func (s *Server) checkFreshness(r *request) *refusal {
	req := r.req
	if !s.inCollective(req.Collective) {
		return drop(dropCollective, "request %s is for collective %q", req.ID, req.Collective)
	}
	// The broker decides who may publish in which collective by subject; a
	// request labelled for another collective than its subject's would slip
	// past that restriction.
	if sc, _, _ := strings.Cut(r.subject, "."); r.subject != "" && sc != req.Collective {
		return drop(dropCollective, "request %s for collective %q arrived on %s", req.ID, req.Collective, r.subject)
	}
	// Replies go only to the signer's own reply subjects, so nobody can aim
	// a fleet's replies at another client.
	if own := protocol.ReplyPrefix(req.Collective, protocol.CallerHash(r.caller)) + "."; req.ProcessResults && !strings.HasPrefix(req.ReplyTo, own) {
		return drop(dropReplyTo, "request %s: reply subject %q is not one of %q's (%s*)", req.ID, req.ReplyTo, r.caller, own)
	}
	if req.TTL <= 0 {
		return drop(dropTTL, "request %s has ttl %d", req.ID, req.TTL)
	}
	ttl := min(time.Duration(req.TTL)*time.Second, s.opts.MaxTTL)
	created := req.Created()
	if created.After(r.received.Add(s.opts.Skew)) {
		return drop(dropFuture, "request %s from %q is dated %s in the future", req.ID, r.caller,
			created.Sub(r.received).Round(time.Millisecond)).counting(&s.stats.TTLExpired)
	}
	if r.received.After(created.Add(ttl)) {
		return drop(dropExpired, "request %s from %q expired %s ago", req.ID, r.caller,
			r.received.Sub(created.Add(ttl)).Round(time.Millisecond)).counting(&s.stats.TTLExpired)
	}
	switch err := s.replay.firstSeen(r.caller, req.ID, r.received, created.Add(ttl+s.opts.Skew)); {
	case err == nil:
		return nil
	case errors.Is(err, errReplayed):
		return drop(dropReplay, "request %s from %q was already received", req.ID, r.caller)
	case errors.Is(err, errCallerFull), errors.Is(err, errCacheFull):
		return drop(dropReplayFull, "request %s from %q refused: %v", req.ID, r.caller, err)
	default:
		s.log.Error("replay cache write failed: refusing requests", "err", err)
		return drop(dropReplayStore, "request %s from %q refused: %v", req.ID, r.caller, err)
	}
}

func (s *Server) inCollective(c string) bool {
	for _, have := range s.opts.Collectives {
		if have == c {
			return true
		}
	}
	return false
}

// notForUs is the refusal of a request whose filter does not select this
// node: counted, neither logged nor answered.
func (s *Server) notForUs() *refusal {
	return &refusal{quiet: true, also: &s.stats.Filtered}
}

// matchFilter is step 4: identity, facts, classes, agents and compound
// expressions, without data plugins. A data call in the filter is not made
// yet: it could read any file the daemon can (and take seconds), and a
// caller the policy denies must learn nothing from it. The filter is then
// decided by matchDataFilter, after authorization.
func (s *Server) matchFilter(r *request) *refusal {
	r.deferData = true
	ctx, node := s.view(r)
	matched := r.req.Filter.Match(ctx, node)
	r.deferData = false
	switch {
	case matched:
		return nil
	case r.dataDeferred:
		return nil // decided by matchDataFilter
	}
	return s.notForUs()
}

// authorize is step 5 (ActionPolicy), on the delivery goroutine and so
// without data plugins: a policy rule that calls one (puppet().enabled=false,
// fstat(...) in a compound column) is reached only by evaluating the rules
// before it, and if one is reached the decision is left to
// authorizeWithData, off the delivery goroutine. Rules are first match, so a
// policy whose deciding rule makes no data call is decided here.
func (s *Server) authorize(r *request) *refusal {
	if s.opts.Authorizer == nil {
		r.decision = Decision{Allowed: true, Rule: "authorization disabled"}
		return nil
	}
	filterDeferred := r.dataDeferred
	r.deferData, r.dataDeferred = true, false
	ctx, node := s.view(r)
	d := s.opts.Authorizer.Authorize(ctx, r.req.CallerID, r.req.Agent, r.req.Action, node)
	r.policyDeferred = r.dataDeferred
	r.deferData, r.dataDeferred = false, filterDeferred
	if r.policyDeferred {
		return nil // d may be a deny for the deferred call: not a decision
	}
	return s.decided(r, d)
}

// authorizeWithData begins step 6 (the data calls): ActionPolicy again,
// data plugins included (within the request's data budget), when authorize
// had to leave it.
func (s *Server) authorizeWithData(r *request) *refusal {
	if !r.policyDeferred {
		return nil
	}
	ctx, node := s.view(r)
	return s.decided(r, s.opts.Authorizer.Authorize(ctx, r.req.CallerID, r.req.Agent, r.req.Action, node))
}

// decided applies an ActionPolicy decision. A denied caller whose filter
// needs a data plugin is not told anything: whether the filter selects this
// node is unknown, and evaluating it for them is what must not happen.
func (s *Server) decided(r *request, d Decision) *refusal {
	r.decision = d
	switch {
	case r.decision.Allowed:
		return nil
	case r.dataDeferred:
		return drop(dropDataDenied, "request %s from %q: denied (%s), and its filter's data plugins are not run for a denied caller",
			r.req.ID, r.req.CallerID, r.decision.Rule).counting(&s.stats.Denied)
	}
	return answer(protocol.Aborted, deniedMessage).counting(&s.stats.Denied)
}

const deniedMessage = "You are not authorized to call this agent or action"

// matchDataFilter is the rest of step 6: for an authorized caller, the
// filter again, data plugins included, within the request's data budget.
func (s *Server) matchDataFilter(r *request) *refusal {
	if !r.dataDeferred {
		return nil
	}
	if ctx, node := s.view(r); r.req.Filter.Match(ctx, node) {
		return nil
	}
	return s.notForUs()
}

// resolveAgent is step 7: the agent and action must exist (status 2
// otherwise). It comes after ActionPolicy so that a caller the policy denies
// gets the same answer for agents that exist and for agents that do not: an
// unauthorized caller cannot enumerate them (docs/security.md).
func (s *Server) resolveAgent(r *request) *refusal {
	a, ok := s.agent(r.req.Agent)
	if !ok {
		return answer(protocol.UnknownAction, fmt.Sprintf("Unknown agent %q", r.req.Agent))
	}
	r.agent = a
	r.action = a.DDL.Action(r.req.Action)
	if _, has := a.Handler(r.req.Action); r.action == nil || !has {
		return answer(protocol.UnknownAction, fmt.Sprintf("Unknown action %q for agent %q", r.req.Action, r.req.Agent))
	}
	return nil
}

// auditUnavailable is the status message of a request refused because its
// audit record could not be written.
const auditUnavailable = "audit log unavailable: request refused"

// auditRequest is step 8: every authenticated request for this node is
// recorded, allowed or denied. A failed write refuses the request unless the
// node is configured to fail open.
//
// A quick action (agent.Agent.RegisterQuick) answers from memory: its reply
// is its only effect. Its request record is written with its completion
// record, in one append, after it ran and before the reply goes out; a
// failed write replaces the reply with the refusal. That halves the log's
// writes for the most frequent requests, and still no reply leaves the node
// ahead of its audit lines.
func (s *Server) auditRequest(r *request) *refusal {
	if s.opts.Auditor != nil && r.agent.Quick(r.req.Action) && !r.req.Async {
		r.auditLater = true
		return nil
	}
	if s.writeAudit(r) || s.opts.AuditFailOpen {
		return nil
	}
	f := answer(protocol.UnknownError, auditUnavailable)
	f.noAudit = true
	return f
}

// writeAudit writes the request record and reports whether it is in the
// log (true without an auditor).
func (s *Server) writeAudit(r *request) bool {
	if s.opts.Auditor == nil {
		r.audited = true
		return true
	}
	if err := s.opts.Auditor.Audit(AuditEvent{Request: r.req, Signer: r.caller, Decision: r.decision, JobID: r.jobID()}); err != nil {
		s.stats.AuditErrors.Add(1)
		s.log.Error("audit write failed", "id", r.req.ID, "err", err)
		return false
	}
	r.audited = true
	return true
}

// auditComplete writes the completion record (with the request record when
// that was left for it) and observes the outcome. It reports false when the
// request record could not be written and the node fails closed: the caller
// must then send the auditUnavailable refusal instead of the action's reply.
func (s *Server) auditComplete(r *request, status protocol.StatusCode, msg string, d time.Duration) bool {
	ok := true
	if s.opts.Auditor != nil {
		ev := AuditEvent{Request: r.req, Signer: r.caller, Decision: r.decision, Status: status, Message: msg, Duration: d,
			Complete: true, WithRequest: r.auditLater, JobID: r.jobID()}
		if err := s.opts.Auditor.Audit(ev); err != nil {
			s.stats.AuditErrors.Add(1)
			s.log.Error("audit write failed", "id", r.req.ID, "err", err)
			ok = !r.auditLater || s.opts.AuditFailOpen
		}
	}
	if !ok {
		status = protocol.UnknownError
	}
	s.observe(r, status, d)
	return ok
}

// validateInput is step 9: the node checks inputs against the DDL again,
// whatever the client did.
func (s *Server) validateInput(r *request) *refusal {
	data, err := r.action.ValidateInputs(r.req.Data)
	if err != nil {
		status := protocol.InvalidData
		var ie *ddl.InputError
		if errors.As(err, &ie) && ie.Missing {
			status = protocol.MissingData
		}
		return answer(status, err.Error())
	}
	r.inputs = data
	return nil
}

// admit is step 10: a caller may have at most Options.MaxRunningPerCaller
// slow actions running on this node at once (quick actions return at once
// and are not counted), so one caller cannot occupy the node with hundreds
// of long actions.
func (s *Server) admit(r *request) *refusal {
	// A detached job runs outside the daemon: starting it takes no slot.
	if r.agent.Quick(r.req.Action) || r.req.Async {
		return nil
	}
	s.runningMu.Lock()
	defer s.runningMu.Unlock()
	if n := s.running[r.caller]; n >= s.opts.MaxRunningPerCaller {
		f := answer(protocol.Aborted, fmt.Sprintf("%d actions of %s are already running on this node (the limit): try again later", n, r.caller))
		f.tally = dropBusy
		return f
	}
	s.running[r.caller]++
	r.admitted = true
	return nil
}

// release gives back the caller's running slot when its action ends.
func (s *Server) release(r *request) {
	if !r.admitted {
		return
	}
	s.runningMu.Lock()
	defer s.runningMu.Unlock()
	if s.running[r.caller]--; s.running[r.caller] <= 0 {
		delete(s.running, r.caller)
	}
}

// run is step 11: the action runs with the agent's timeout. A watchdog replies
// "timeout after Ns" when the deadline passes; a handler that overruns has
// its late result discarded. The caller is never left without an answer.
func (s *Server) run(r *request) {
	defer s.wg.Done()
	defer s.release(r)
	timeout := r.agent.Timeout()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	h, _ := r.agent.Handler(r.req.Action)
	areq := s.agentRequest(r)
	rep := &agent.Reply{Data: r.action.OutputDefaults()}
	start := time.Now()
	var answered sync.Once
	// end audits the outcome and replies with it; once.
	end := func(status protocol.StatusCode, msg string, data map[string]any) {
		if !s.auditComplete(r, status, msg, time.Since(start)) {
			status, msg, data = protocol.UnknownError, auditUnavailable, nil
		}
		s.reply(r, status, msg, data)
	}
	timedOut := func() {
		answered.Do(func() {
			s.stats.Timeouts.Add(1)
			s.log.Warn("action timed out", "id", r.req.ID, "agent", r.req.Agent, "action", r.req.Action, "timeout", timeout)
			end(protocol.Aborted, fmt.Sprintf("timeout after %s", timeout), nil)
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
		end(rep.Status, rep.Message, rep.Data)
	})
}

// reply is step 12: sign the reply with the node's own key and publish it.
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
	if r.started {
		rep.JobID = r.req.ID
	}
	body, err := json.Marshal(&rep)
	if err != nil {
		// An action put something unencodable in its reply: say so rather than vanish.
		rep.Status, rep.Message, rep.Data = protocol.UnknownError, "reply not encodable: "+err.Error(), nil
		body, _ = json.Marshal(&rep)
	}
	id := s.signer()
	env, err := protocol.EncodeSecureReply(&protocol.SecureReply{
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

// nodeView is the node as filters and policies see it, for one request.
type nodeView struct {
	s *Server
	r *request
}

// errDataDeferred is what a data call returns in the first filter pass.
var errDataDeferred = errors.New("data plugins run after authorization")

// view returns the node view for a request and the context its data calls
// run under: the request's data budget, which starts at the first view and
// is shared by the filter's and the policy's data calls.
func (s *Server) view(r *request) (context.Context, nodeView) {
	if r.dataCtx == nil {
		r.dataCtx, r.dataCancel = context.WithTimeout(context.Background(), s.opts.DataBudget)
	}
	return r.dataCtx, nodeView{s: s, r: r}
}

func (v nodeView) Identity() string             { return v.s.Identity() }
func (v nodeView) Fact(path string) (any, bool) { return v.s.opts.Facts.Fact(path) }
func (v nodeView) Classes() []string            { return v.s.opts.Facts.Classes() }
func (v nodeView) Agents() []string             { return v.s.opts.Agents.AgentNames() }
func (v nodeView) Data(ctx context.Context, plugin, query string) (map[string]any, error) {
	if v.r.deferData {
		v.r.dataDeferred = true
		return nil, errDataDeferred
	}
	if v.s.opts.Data == nil {
		return nil, fmt.Errorf("no data plugins on this node")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("data plugin %s: the request's %s budget for data calls is spent", plugin, v.s.opts.DataBudget)
	}
	return v.s.opts.Data.Query(ctx, plugin, query)
}

var _ filter.Node = nodeView{}
