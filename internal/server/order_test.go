package server

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/marionette/mco/filter"
	"github.com/marionette/mco/internal/authz"
	"github.com/marionette/mco/internal/natstest"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/poll"
	"github.com/marionette/mco/protocol"
)

// gatedData blocks every query until gate is closed, counting the calls.
type gatedData struct {
	calls atomic.Int64
	gate  chan struct{}
}

func (d *gatedData) Query(ctx context.Context, _, _ string) (map[string]any, error) {
	d.calls.Add(1)
	select {
	case <-d.gate:
		return map[string]any{"present": true, "size": 1}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (*gatedData) Names() []string { return []string{"fstat"} }

func dataFilter(t *testing.T) *filter.Filter {
	t.Helper()
	e, err := filter.ParseCompound("fstat('/etc/shadow').size > 0")
	if err != nil {
		t.Fatal(err)
	}
	return &filter.Filter{Compound: []*filter.Expr{e}}
}

// TestDataFilterNotRunForDeniedCaller: a caller the policy denies learns
// nothing from a data function in its filter: none runs, nothing answers,
// and the refusal is counted (issue 11 #5).
func TestDataFilterNotRunForDeniedCaller(t *testing.T) {
	p := newTestPKI(t)
	data := &gatedData{gate: make(chan struct{})}
	close(data.gate)
	n := newNode(t, p, natstest.Start(t), func(o *Options) { o.Data = data; o.Authorizer = denyAll{} })
	req := newRequest()
	req.Filter = dataFilter(t)
	n.s.Handle(signed(t, p.alice, req))
	n.s.wg.Wait()
	if c := data.calls.Load(); c != 0 {
		t.Fatalf("%d data calls ran for a denied caller", c)
	}
	if got := n.s.Stats().Dropped(dropDataDenied); got != 1 || n.s.Stats().Denied.Load() != 1 {
		t.Fatalf("data_filter_denied %d, denied %d; want 1, 1", got, n.s.Stats().Denied.Load())
	}
	select {
	case m := <-n.replies:
		t.Fatalf("a reply was sent: %s", m.Data)
	default:
	}
}

// TestDataFilterOffDeliveryGoroutine: a request whose data call blocks does
// not hold up the next request on the same delivery path; once the call
// returns, the first request runs too.
func TestDataFilterOffDeliveryGoroutine(t *testing.T) {
	p := newTestPKI(t)
	data := &gatedData{gate: make(chan struct{})}
	n := newNode(t, p, natstest.Start(t), func(o *Options) { o.Data = data; o.Authorizer = allowAll{} })
	slow := newRequest()
	slow.Filter = dataFilter(t)
	n.s.Handle(signed(t, p.alice, slow)) // returns although the data call blocks
	n.stillServes()
	close(data.gate)
	if rep := n.reply(slow.ID); rep.Status != protocol.OK {
		t.Fatalf("request with a data filter: status %d %q", rep.Status, rep.Message)
	}
}

// TestUnknownAgentAfterPolicy: a denied caller gets the same answer for an
// agent that exists and one that does not (no enumeration); an allowed caller
// is told the agent is unknown.
func TestUnknownAgentAfterPolicy(t *testing.T) {
	p := newTestPKI(t)
	url := natstest.Start(t)
	denied := newNode(t, p, url, func(o *Options) { o.Authorizer = denyAll{} })
	for _, agentName := range []string{"test", "nosuchagent"} {
		req := newRequest()
		req.Agent = agentName
		denied.s.Handle(signed(t, p.alice, req))
		if rep := denied.reply(req.ID); rep.Status != protocol.Aborted || rep.Message != deniedMessage {
			t.Errorf("denied caller, agent %s: status %d %q", agentName, rep.Status, rep.Message)
		}
	}
}

// TestRunningLimitPerCaller: one caller may not run more than
// MaxRunningPerCaller slow actions at once; the next is answered "try again
// later" and counted, and another caller is not affected.
func TestRunningLimitPerCaller(t *testing.T) {
	p := newTestPKI(t)
	n := newNode(t, p, natstest.Start(t), func(o *Options) { o.MaxRunningPerCaller = 2 })
	for range 2 {
		req := newRequest()
		req.Action, req.Data = "sleep", nil
		n.s.Handle(signed(t, p.alice, req))
	}
	req := newRequest()
	req.Action, req.Data = "sleep", nil
	n.s.Handle(signed(t, p.alice, req))
	rep := n.reply(req.ID)
	if rep.Status != protocol.Aborted || !strings.Contains(rep.Message, "try again later") {
		t.Fatalf("third slow action: status %d %q", rep.Status, rep.Message)
	}
	if got := n.s.Stats().Dropped(dropBusy); got != 1 {
		t.Errorf("busy = %d, want 1", got)
	}
	// Quick... and other callers still run: bob's echo is answered.
	if rep := echoFrom(t, p, n, "bob.mcollective"); rep.Status != protocol.OK {
		t.Fatalf("bob while alice is at her limit: status %d %q", rep.Status, rep.Message)
	}
}

// policy adapts the real ActionPolicy to the server's Authorizer, as
// internal/node does (which the server cannot import).
type policy struct{ a *authz.Authorizer }

func (p policy) Authorize(ctx context.Context, caller, agent, action string, node filter.Node) Decision {
	d := p.a.Authorize(ctx, authz.Request{Caller: caller, Agent: agent, Action: action, Node: node})
	return Decision{Allowed: d.Allowed, Rule: d.String()}
}

// TestPolicyDataCallOffDeliveryGoroutine: an ActionPolicy rule that calls a
// data plugin (here in a 5-field rule's compound facts column) is evaluated
// off the delivery goroutine: while alice's request waits for its data call,
// bob's request (decided by an earlier rule without data) is delivered and
// answered first; then alice's is authorized by her rule and answered too.
// The data call counts against the request's data budget as a filter's does.
func TestPolicyDataCallOffDeliveryGoroutine(t *testing.T) {
	p := newTestPKI(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "test.policy"), []byte("policy default deny\n"+
		"allow\tcert=bob.mcollective\t*\t*\t*\n"+
		"allow\tcert=alice.mcollective\t*\tfstat('/etc/hosts').size>0\t*\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := authz.New(authz.Options{Dir: dir}, slog.New(slog.DiscardHandler))
	data := &gatedData{gate: make(chan struct{})}
	n := newNode(t, p, natstest.Start(t), func(o *Options) { o.Data = data; o.Authorizer = policy{a} })
	slow := newRequest()
	n.s.Handle(signed(t, p.alice, slow)) // returns although the policy's data call blocks
	poll.Until(t, "the policy's data call to start", func() bool { return data.calls.Load() == 1 })

	if rep := echoFrom(t, p, n, "bob.mcollective"); rep.Status != protocol.OK {
		t.Fatalf("bob while alice's policy data call blocks: status %d %q", rep.Status, rep.Message)
	}
	close(data.gate)
	if rep := n.reply(slow.ID); rep.Status != protocol.OK {
		t.Fatalf("alice, allowed by a rule with a data call: status %d %q", rep.Status, rep.Message)
	}
	if c := data.calls.Load(); c != 1 {
		t.Errorf("%d data calls, want 1 (bob's rule needs none)", c)
	}
}

// echoFrom sends n an echo request from name, a client of p's CA other
// than alice, and returns its reply.
func echoFrom(t *testing.T, p *testPKI, n *node, name string) protocol.Reply {
	t.Helper()
	id := p.ca.Issue(pki.RoleClient, name)
	req := newRequest()
	req.Sender, req.CallerID = id.Name(), "cert="+id.Name()
	req.ReplyTo = protocol.ReplySubject(testCollective, protocol.CallerHash(id.Name()), req.ID)
	n.s.Handle(signed(t, id, req))
	return n.reply(req.ID)
}
