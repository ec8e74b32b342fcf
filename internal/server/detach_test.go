package server

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/internal/natstest"
	"github.com/marionette/mco/protocol"
)

// recordingDetacher remembers the requests it was asked to detach.
type recordingDetacher struct {
	mu   sync.Mutex
	reqs []*agent.Request
	err  error
}

func (d *recordingDetacher) Detach(_ *agent.Agent, req *agent.Request) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return d.err
	}
	d.reqs = append(d.reqs, req)
	return nil
}

func (d *recordingDetacher) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.reqs)
}

// recordingAuditor keeps every event.
type recordingAuditor struct {
	mu     sync.Mutex
	events []AuditEvent
}

func (a *recordingAuditor) Audit(ev AuditEvent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, ev)
	return nil
}

func asyncRequest() *protocol.Request {
	req := newRequest()
	req.Protocol, req.Async = protocol.AsyncRequestProtocol, true
	return req
}

// TestPipelineAsync: an async request passes every step a foreground one
// does and then is detached, never run; the reply names the job only when
// it started; both audit records carry the job id.
func TestPipelineAsync(t *testing.T) {
	p := newTestPKI(t)
	url := natstest.Start(t)
	tests := []struct {
		name     string
		detacher *recordingDetacher // nil: a node without a spool
		opts     func(*Options)
		req      func(*protocol.Request)
		status   protocol.StatusCode
		msg      string
		detached bool
	}{
		{name: "started", detacher: &recordingDetacher{}, status: protocol.OK, msg: "started job ", detached: true},
		{name: "no spool", status: protocol.Aborted, msg: "cannot run detached jobs"},
		{name: "refused by the detacher", detacher: &recordingDetacher{err: errors.New("an identical job is already running")},
			status: protocol.Aborted, msg: "job not started: an identical job is already running"},
		{name: "denied", detacher: &recordingDetacher{}, opts: func(o *Options) { o.Authorizer = denyAll{} },
			status: protocol.Aborted, msg: "not authorized"},
		{name: "invalid input", detacher: &recordingDetacher{}, req: func(r *protocol.Request) { r.Data["msg"] = "Rm -rf /" },
			status: protocol.InvalidData, msg: `input "msg"`},
		{name: "unknown action", detacher: &recordingDetacher{}, req: func(r *protocol.Request) { r.Action = "nosuch" },
			status: protocol.UnknownAction, msg: "Unknown action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			aud := &recordingAuditor{}
			n := newNode(t, p, url, func(o *Options) {
				o.Auditor = aud
				if tt.detacher != nil {
					o.Jobs = tt.detacher
				}
				if tt.opts != nil {
					tt.opts(o)
				}
			})
			req := asyncRequest()
			if tt.req != nil {
				tt.req(req)
			}
			n.s.Handle(signed(t, p.alice, req))
			rep := n.reply(req.ID)
			n.s.wg.Wait()
			if rep.Status != tt.status || !strings.Contains(rep.Message, tt.msg) {
				t.Fatalf("status %d %q, want %d containing %q", rep.Status, rep.Message, tt.status, tt.msg)
			}
			if started := rep.JobID == req.ID; started != tt.detached || (!tt.detached && rep.JobID != "") {
				t.Errorf("reply job id %q for request %s, want started %v", rep.JobID, req.ID, tt.detached)
			}
			if tt.detacher != nil && (tt.detacher.count() == 1) != tt.detached {
				t.Errorf("detached %d times", tt.detacher.count())
			}
			if n.runs.Load() != 0 {
				t.Error("an async request ran in the daemon")
			}
			if len(aud.events) != 2 {
				t.Fatalf("%d audit events, want request and completion", len(aud.events))
			}
			for _, ev := range aud.events {
				if ev.JobID != req.ID {
					t.Errorf("audit event (complete %v) job id %q, want %q", ev.Complete, ev.JobID, req.ID)
				}
			}
		})
	}
}

// TestPipelineAsyncMarkers: async and its protocol version go together; a
// request with one and not the other is dropped unanswered and unrun.
func TestPipelineAsyncMarkers(t *testing.T) {
	p := newTestPKI(t)
	det := &recordingDetacher{}
	n := newNode(t, p, natstest.Start(t), func(o *Options) { o.Jobs = det })
	for _, req := range []*protocol.Request{
		func() *protocol.Request { r := newRequest(); r.Async = true; return r }(),
		func() *protocol.Request { r := newRequest(); r.Protocol = protocol.AsyncRequestProtocol; return r }(),
	} {
		n.s.Handle(signed(t, p.alice, req))
	}
	n.stillServes()
	if det.count() != 0 || n.s.Stats().Unvalidated.Load() != 2 {
		t.Fatalf("detached %d, unvalidated %d", det.count(), n.s.Stats().Unvalidated.Load())
	}
}
