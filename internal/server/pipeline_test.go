package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/ddl"
	"github.com/marionette/mco/filter"
	"github.com/marionette/mco/internal/agents"
	"github.com/marionette/mco/internal/natstest"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/pkitest"
	"github.com/marionette/mco/internal/poll"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/protocol"
)

// testDDL is the agent the pipeline tests call. Its timeout (1 s) is what
// the "sleep" action overruns.
const testDDL = `{
  "metadata": {"name": "test", "description": "pipeline tests", "author": "t", "license": "t",
               "version": "1", "url": "https://example.net", "timeout": 1},
  "actions": [
    {"action": "echo", "description": "echo msg",
     "input": {"msg": {"prompt": "Msg", "description": "what to echo", "type": "string",
                       "optional": false, "validation": "^[a-z ]+$", "maxlength": 40}},
     "output": {"msg": {"description": "the msg", "display_as": "Msg"}}},
    {"action": "sleep", "description": "blocks until cancelled"},
    {"action": "boom", "description": "panics"},
    {"action": "record", "description": "counts its runs"},
    {"action": "quick", "description": "answers from memory (RegisterQuick)",
     "input": {"msg": {"prompt": "Msg", "description": "ignored", "type": "integer", "optional": true}},
     "output": {"answer": {"description": "the answer", "display_as": "Answer"}}},
    {"action": "nohandler", "description": "documented but not implemented"}
  ]
}`

const (
	testCollective = "mcollective"
	aliceName      = "alice.mcollective"
	nodeName       = "node1.example.net"
)

// pki holds the certificates of a test collective and a foreign one.
type testPKI struct {
	ca       *pkitest.CA
	alice    *security.Identity // client of our CA
	node     *security.Identity // node of our CA (the server's identity)
	foreign  *security.Identity // client named like alice, from another CA
	nodeCert *security.Identity // another node certificate, misused as a client
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	ca := pkitest.New(t, "pipeline CA")
	return &testPKI{
		ca:       ca,
		alice:    ca.Client(aliceName),
		node:     ca.Node(nodeName),
		foreign:  pkitest.New(t, "foreign CA").Client(aliceName),
		nodeCert: ca.Node("other.mcollective"),
	}
}

// testAgent builds the "test" agent; runs counts the runs of "record".
func testAgent(t testing.TB, runs *atomic.Int64) *agent.Agent {
	t.Helper()
	d, err := ddl.Parse("test.json", []byte(testDDL))
	if err != nil {
		t.Fatal(err)
	}
	a := agent.New(d)
	a.Register("echo", func(_ context.Context, req *agent.Request, rep *agent.Reply) {
		rep.Data["msg"] = req.Data["msg"]
	})
	a.Register("sleep", func(ctx context.Context, _ *agent.Request, _ *agent.Reply) {
		<-ctx.Done()
	})
	a.Register("boom", func(context.Context, *agent.Request, *agent.Reply) {
		panic("kaboom")
	})
	a.Register("record", func(context.Context, *agent.Request, *agent.Reply) {
		runs.Add(1)
	})
	a.RegisterQuick("quick", func(_ context.Context, _ *agent.Request, rep *agent.Reply) {
		rep.Data["answer"] = 42
	})
	return a
}

// node is a server under test with a subscription to every reply subject.
type node struct {
	t       *testing.T
	p       *testPKI
	s       *Server
	v       *security.Verifier
	replies chan *nats.Msg
	runs    *atomic.Int64
}

func newNode(t *testing.T, p *testPKI, url string, opt func(*Options)) *node {
	t.Helper()
	v := p.ca.Verifier()
	n := &node{t: t, p: p, v: v, replies: make(chan *nats.Msg, 64), runs: new(atomic.Int64)}
	opts := Options{Identity: p.node, Verifier: v, Collectives: []string{testCollective, "eu"},
		Agents: agents.NewRegistry(testAgent(t, n.runs))}
	if opt != nil {
		opt(&opts)
	}
	var err error
	if n.s, err = New(opts); err != nil {
		t.Fatal(err)
	}
	sub := natstest.Connect(t, url)
	if _, err := sub.ChanSubscribe("*.reply.>", n.replies); err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := n.s.Start(natstest.Connect(t, url)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.s.Stop)
	return n
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newRequest is a valid echo request from alice, ready to be changed by a test.
func newRequest() *protocol.Request {
	id := newID()
	return &protocol.Request{
		Protocol: protocol.RequestProtocol, ID: id, Sender: aliceName,
		CallerID: security.CallerID(aliceName), Collective: testCollective,
		Agent: "test", Action: "echo", Data: map[string]any{"msg": "hello"},
		ReplyTo: protocol.ReplySubject(testCollective, protocol.CallerHash(aliceName), id),
		Time:    time.Now().UnixNano(), TTL: 60, ProcessResults: true,
	}
}

// envelope signs req with id and returns the envelope (for further tampering).
func envelope(t testing.TB, id *security.Identity, req *protocol.Request) *protocol.SecureRequest {
	t.Helper()
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return &protocol.SecureRequest{Protocol: protocol.SecureRequestProtocol, Request: body, Signature: id.Sign(body), Cert: id.Cert.Raw}
}

func encode(t testing.TB, env *protocol.SecureRequest) []byte {
	t.Helper()
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func signed(t testing.TB, id *security.Identity, req *protocol.Request) []byte {
	t.Helper()
	return encode(t, envelope(t, id, req))
}

// reply waits for the reply to request id, verifies the node's signature and
// fails the test on any other reply first.
func (n *node) reply(id string) protocol.Reply {
	n.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-n.replies:
			var env protocol.SecureReply
			if err := json.Unmarshal(m.Data, &env); err != nil {
				n.t.Fatalf("undecodable reply on %s: %v", m.Subject, err)
			}
			cert, err := n.v.Verify(env.Cert, env.Reply, env.Signature, pki.RoleNode)
			if err != nil {
				n.t.Fatalf("reply signature: %v", err)
			}
			var rep protocol.Reply
			if err := json.Unmarshal(env.Reply, &rep); err != nil {
				n.t.Fatal(err)
			}
			if rep.RequestID != id {
				n.t.Fatalf("unexpected reply for %s (status %d %q) while waiting for %s", rep.RequestID, rep.Status, rep.Message, id)
			}
			if rep.Sender != nodeName || cert.Subject.CommonName != nodeName || !strings.HasSuffix(m.Subject, "."+id) {
				n.t.Fatalf("reply from %q signed by %q on %s", rep.Sender, cert.Subject.CommonName, m.Subject)
			}
			return rep
		case <-deadline:
			n.t.Fatalf("no reply to %s", id)
		}
	}
}

// stillServes sends a good request and expects an OK reply to it, and to it
// only: a reply to an earlier (dropped) request would arrive first.
func (n *node) stillServes() {
	n.t.Helper()
	req := newRequest()
	n.s.Handle(signed(n.t, n.p.alice, req))
	if rep := n.reply(req.ID); rep.Status != protocol.OK || rep.Data["msg"] != "hello" {
		n.t.Fatalf("good request after a bad one: status %d %q data %v", rep.Status, rep.Message, rep.Data)
	}
}

// TestPipelineDrops covers every message the node must drop without a reply.
func TestPipelineDrops(t *testing.T) {
	p := newTestPKI(t)
	url := natstest.Start(t)
	mutated := func(f func(*protocol.Request)) func(t *testing.T, p *testPKI) []byte {
		return func(t *testing.T, p *testPKI) []byte {
			req := newRequest()
			f(req)
			return signed(t, p.alice, req)
		}
	}
	tests := []struct {
		name string
		opts func(*Options)
		msg  func(t *testing.T, p *testPKI) []byte
		drop string
	}{
		{name: "forged signature", drop: dropSignature, msg: func(t *testing.T, p *testPKI) []byte {
			env := envelope(t, p.alice, newRequest())
			env.Request = []byte(strings.Replace(string(env.Request), `"hello"`, `"hellx"`, 1))
			return encode(t, env)
		}},
		{name: "signature from another message", drop: dropSignature, msg: func(t *testing.T, p *testPKI) []byte {
			env := envelope(t, p.alice, newRequest())
			env.Signature = envelope(t, p.alice, newRequest()).Signature
			return encode(t, env)
		}},
		{name: "cert of another CA", drop: dropCert, msg: func(t *testing.T, p *testPKI) []byte {
			return signed(t, p.foreign, newRequest())
		}},
		{name: "node certificate as client", drop: dropCert, msg: func(t *testing.T, p *testPKI) []byte {
			req := newRequest()
			req.CallerID = security.CallerID("other.mcollective")
			return signed(t, p.nodeCert, req)
		}},
		{name: "cert swapped after signing", drop: dropSignature, msg: func(t *testing.T, p *testPKI) []byte {
			env := envelope(t, p.alice, newRequest())
			env.Cert = p.ca.Issue(pki.RoleClient, "bob.mcollective").Cert.Raw
			return encode(t, env)
		}},
		{name: "caller id of someone else", drop: dropCaller, msg: mutated(func(r *protocol.Request) { r.CallerID = "cert=bob.mcollective" })},
		{name: "expired", drop: dropExpired, msg: mutated(func(r *protocol.Request) { r.Time = time.Now().Add(-2 * time.Hour).UnixNano() })},
		{name: "ttl capped by max ttl", drop: dropExpired, opts: func(o *Options) { o.MaxTTL = time.Minute },
			msg: mutated(func(r *protocol.Request) { r.TTL = 86400; r.Time = time.Now().Add(-2 * time.Minute).UnixNano() })},
		{name: "future beyond skew", drop: dropFuture, msg: mutated(func(r *protocol.Request) { r.Time = time.Now().Add(time.Minute).UnixNano() })},
		{name: "truncated", drop: dropMalformed, msg: func(t *testing.T, p *testPKI) []byte {
			b := signed(t, p.alice, newRequest())
			return b[:len(b)/2]
		}},
		{name: "not json", drop: dropMalformed, msg: func(*testing.T, *testPKI) []byte { return []byte("PING\r\n") }},
		{name: "empty", drop: dropMalformed, msg: func(*testing.T, *testPKI) []byte { return nil }},
		{name: "signed non-json request", drop: dropMalformed, msg: func(t *testing.T, p *testPKI) []byte {
			body := []byte("not json")
			return encode(t, &protocol.SecureRequest{Protocol: protocol.SecureRequestProtocol, Request: body, Signature: p.alice.Sign(body), Cert: p.alice.Cert.Raw})
		}},
		{name: "unknown envelope protocol", drop: dropProtocol, msg: func(t *testing.T, p *testPKI) []byte {
			env := envelope(t, p.alice, newRequest())
			env.Protocol = "mcollective.secure_request.2"
			return encode(t, env)
		}},
		{name: "unknown request protocol", drop: dropProtocol, msg: mutated(func(r *protocol.Request) { r.Protocol = "marionette.request.99" })},
		{name: "missing id", drop: dropMalformed, msg: mutated(func(r *protocol.Request) { r.ID = "" })},
		{name: "missing agent", drop: dropMalformed, msg: mutated(func(r *protocol.Request) { r.Agent = "" })},
		{name: "oversized", drop: dropOversized, opts: func(o *Options) { o.MaxMessageSize = 4096 },
			msg: mutated(func(r *protocol.Request) { r.Data["msg"] = strings.Repeat("a", 8192) })},
		{name: "ttl 0", drop: dropTTL, msg: mutated(func(r *protocol.Request) { r.TTL = 0 })},
		{name: "negative ttl", drop: dropTTL, msg: mutated(func(r *protocol.Request) { r.TTL = -5 })},
		{name: "wrong collective", drop: dropCollective, msg: mutated(func(r *protocol.Request) {
			r.Collective = "us"
			r.ReplyTo = protocol.ReplySubject("us", protocol.CallerHash(aliceName), r.ID)
		})},
		{name: "reply_to outside the collective", drop: dropReplyTo, msg: mutated(func(r *protocol.Request) {
			r.ReplyTo = protocol.ReplySubject("eu", protocol.CallerHash(aliceName), r.ID)
		})},
		{name: "reply_to not a reply subject", drop: dropReplyTo, msg: mutated(func(r *protocol.Request) {
			r.ReplyTo = protocol.BroadcastSubject(testCollective, "test")
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNode(t, p, url, tt.opts)
			n.s.Handle(tt.msg(t, p))
			st := n.s.Stats()
			if got := st.Dropped(tt.drop); got != 1 {
				t.Errorf("Dropped(%s) = %d, want 1 (snapshot %v)", tt.drop, got, st.Snapshot()["dropped"])
			}
			if st.Passed.Load() != 0 || st.Replies.Load() != 0 {
				t.Fatalf("a dropped message was dispatched: %v", st.Snapshot())
			}
			n.stillServes()
		})
	}
}

// TestPipelineFreshness: within the skew a request dated in the future is fine.
func TestPipelineWithinSkew(t *testing.T) {
	p := newTestPKI(t)
	n := newNode(t, p, natstest.Start(t), func(o *Options) { o.Skew = 10 * time.Second })
	req := newRequest()
	req.Time = time.Now().Add(5 * time.Second).UnixNano()
	n.s.Handle(signed(t, p.alice, req))
	if rep := n.reply(req.ID); rep.Status != protocol.OK {
		t.Fatalf("request within skew: status %d %q", rep.Status, rep.Message)
	}
}

func TestPipelineReplay(t *testing.T) {
	p := newTestPKI(t)
	url := natstest.Start(t)

	t.Run("same bytes twice", func(t *testing.T) {
		n := newNode(t, p, url, nil)
		req := newRequest()
		req.Action = "record"
		req.Data = nil
		msg := signed(t, p.alice, req)
		n.s.Handle(msg)
		n.s.Handle(msg)
		if rep := n.reply(req.ID); rep.Status != protocol.OK {
			t.Fatalf("first delivery: status %d %q", rep.Status, rep.Message)
		}
		if got := n.s.Stats().Dropped(dropReplay); got != 1 {
			t.Errorf("Dropped(replayed) = %d, want 1", got)
		}
		n.stillServes() // a second reply to req would arrive before this one
		n.s.wg.Wait()
		if got := n.runs.Load(); got != 1 {
			t.Errorf("action ran %d times, want once", got)
		}
	})

	t.Run("broadcast and directed copy", func(t *testing.T) {
		n := newNode(t, p, url, nil)
		req := newRequest()
		req.Action = "record"
		req.Data = nil
		msg := signed(t, p.alice, req)
		pub := natstest.Connect(t, url)
		for _, subj := range []string{protocol.BroadcastSubject(testCollective, "test"), protocol.NodeSubject(testCollective, nodeName)} {
			if err := pub.Publish(subj, msg); err != nil {
				t.Fatal(err)
			}
		}
		if err := pub.Flush(); err != nil {
			t.Fatal(err)
		}
		if rep := n.reply(req.ID); rep.Status != protocol.OK {
			t.Fatalf("status %d %q", rep.Status, rep.Message)
		}
		// The copies arrive asynchronously: poll for the second one's drop.
		if !poll.Wait(func() bool { return n.s.Stats().Dropped(dropReplay) == 1 }) {
			t.Fatalf("the second copy was not dropped as a replay: %v", n.s.Stats().Snapshot())
		}
		n.stillServes()
		n.s.wg.Wait()
		if got := n.runs.Load(); got != 1 {
			t.Errorf("action ran %d times, want once", got)
		}
	})
}

func TestPipelineFilter(t *testing.T) {
	p := newTestPKI(t)
	n := newNode(t, p, natstest.Start(t), nil)
	req := newRequest()
	req.Filter = &filter.Filter{Identity: []string{"someone.else"}}
	n.s.Handle(signed(t, p.alice, req))
	if n.s.Stats().Filtered.Load() != 1 || n.s.Stats().Passed.Load() != 0 {
		t.Fatalf("non-matching filter: %v", n.s.Stats().Snapshot())
	}
	n.stillServes()
	req = newRequest()
	req.Filter = &filter.Filter{Identity: []string{"/^node1\\./"}, Agent: []string{"test"}}
	n.s.Handle(signed(t, p.alice, req))
	if rep := n.reply(req.ID); rep.Status != protocol.OK {
		t.Fatalf("matching filter: status %d %q", rep.Status, rep.Message)
	}
}

type denyAll struct{}

func (denyAll) Authorize(_ context.Context, caller, agent, action string, _ filter.Node) Decision {
	return Decision{Rule: "deny all (test)"}
}

type allowAll struct{}

func (allowAll) Authorize(context.Context, string, string, string, filter.Node) Decision {
	return Decision{Allowed: true, Rule: "allow all (test)"}
}

// failingAuditor fails every write.
type failingAuditor struct{ calls atomic.Int64 }

func (a *failingAuditor) Audit(AuditEvent) error {
	a.calls.Add(1)
	return errors.New("disk full")
}

// TestPipelineReplies covers requests that are refused or fail with a signed reply.
func TestPipelineReplies(t *testing.T) {
	p := newTestPKI(t)
	url := natstest.Start(t)
	tests := []struct {
		name   string
		opts   func(*Options)
		req    func(*protocol.Request)
		status protocol.StatusCode
		msg    string // substring of the status message
		ran    bool   // the action's handler should have run (record only)
	}{
		{name: "ok", status: protocol.OK, msg: "OK"},
		{name: "unknown agent", req: func(r *protocol.Request) { r.Agent = "nosuch" }, status: protocol.UnknownAction, msg: `Unknown agent "nosuch"`},
		{name: "unknown action", req: func(r *protocol.Request) { r.Action = "nosuch" }, status: protocol.UnknownAction, msg: `Unknown action "nosuch"`},
		{name: "action without handler", req: func(r *protocol.Request) { r.Action = "nohandler"; r.Data = nil }, status: protocol.UnknownAction, msg: "Unknown action"},
		{name: "invalid input", req: func(r *protocol.Request) { r.Data["msg"] = "Rm -rf /" }, status: protocol.InvalidData, msg: `input "msg"`},
		{name: "wrong input type", req: func(r *protocol.Request) { r.Data["msg"] = 42 }, status: protocol.InvalidData, msg: `input "msg"`},
		{name: "unknown input", req: func(r *protocol.Request) { r.Data["extra"] = "x" }, status: protocol.InvalidData, msg: "extra"},
		{name: "missing input", req: func(r *protocol.Request) { r.Data = nil }, status: protocol.MissingData, msg: `missing required input "msg"`},
		{name: "timeout", req: func(r *protocol.Request) { r.Action = "sleep"; r.Data = nil }, status: protocol.Aborted, msg: "timeout after 1s"},
		{name: "panic", req: func(r *protocol.Request) { r.Action = "boom"; r.Data = nil }, status: protocol.UnknownError, msg: "kaboom"},
		{name: "denied", opts: func(o *Options) { o.Authorizer = denyAll{} }, req: func(r *protocol.Request) { r.Action = "record"; r.Data = nil },
			status: protocol.Aborted, msg: "You are not authorized to call this agent or action"},
		{name: "allowed", opts: func(o *Options) { o.Authorizer = allowAll{} }, req: func(r *protocol.Request) { r.Action = "record"; r.Data = nil },
			status: protocol.OK, ran: true},
		{name: "audit fails closed", opts: func(o *Options) { o.Auditor = &failingAuditor{} }, req: func(r *protocol.Request) { r.Action = "record"; r.Data = nil },
			status: protocol.UnknownError, msg: "audit log unavailable"},
		{name: "audit fails open", opts: func(o *Options) { o.Auditor = &failingAuditor{}; o.AuditFailOpen = true }, req: func(r *protocol.Request) { r.Action = "record"; r.Data = nil },
			status: protocol.OK, ran: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNode(t, p, url, tt.opts)
			req := newRequest()
			if tt.req != nil {
				tt.req(req)
			}
			n.s.Handle(signed(t, p.alice, req))
			rep := n.reply(req.ID)
			if rep.Status != tt.status || !strings.Contains(rep.Message, tt.msg) {
				t.Fatalf("status %d %q, want %d containing %q", rep.Status, rep.Message, tt.status, tt.msg)
			}
			if rep.Agent != req.Agent || rep.Action != req.Action {
				t.Errorf("reply for %s.%s, want %s.%s", rep.Agent, rep.Action, req.Agent, req.Action)
			}
			n.s.wg.Wait()
			if ran := n.runs.Load() == 1; ran != tt.ran {
				t.Errorf("handler ran: %v, want %v", ran, tt.ran)
			}
			if tt.name == "timeout" && n.s.Stats().Timeouts.Load() != 1 {
				t.Errorf("timeouts counted: %d", n.s.Stats().Timeouts.Load())
			}
			if tt.name == "denied" && n.s.Stats().Denied.Load() != 1 {
				t.Errorf("denials counted: %d", n.s.Stats().Denied.Load())
			}
			if strings.HasPrefix(tt.name, "audit") && n.s.Stats().AuditErrors.Load() == 0 {
				t.Error("audit errors not counted")
			}
			if tt.opts == nil || tt.name == "allowed" || tt.name == "audit fails open" {
				n.stillServes()
			}
		})
	}
}

// TestPipelineFireAndForget: process_results false runs the action and sends nothing.
func TestPipelineFireAndForget(t *testing.T) {
	p := newTestPKI(t)
	n := newNode(t, p, natstest.Start(t), nil)
	req := newRequest()
	req.Action, req.Data, req.ProcessResults, req.ReplyTo = "record", nil, false, ""
	n.s.Handle(signed(t, p.alice, req))
	n.s.wg.Wait()
	if n.runs.Load() != 1 {
		t.Fatalf("fire-and-forget action ran %d times", n.runs.Load())
	}
	if got := n.s.Stats().Replies.Load(); got != 0 {
		t.Fatalf("%d replies sent for a fire-and-forget request", got)
	}
	// Nor does it reply to a failure.
	bad := newRequest()
	bad.Action, bad.ProcessResults, bad.ReplyTo = "nosuch", false, ""
	n.s.Handle(signed(t, p.alice, bad))
	n.stillServes()
	if got := n.s.Stats().Replies.Load(); got != 1 {
		t.Fatalf("replies = %d, want only the good request's", got)
	}
}

// TestHandleNeverPanics feeds mangled variants of a good message.
func TestHandleNeverPanics(t *testing.T) {
	p := newTestPKI(t)
	n := newNode(t, p, natstest.Start(t), nil)
	good := signed(t, p.alice, newRequest())
	inputs := [][]byte{
		[]byte("{}"), []byte("null"), []byte("[]"), []byte(`{"protocol":1}`),
		[]byte(`{"protocol":"marionette.secure_request.1"}`),
		[]byte(`{"protocol":"marionette.secure_request.1","cert":"AAAA","request":"e30=","signature":""}`),
	}
	for i := 0; i < len(good); i += 97 {
		b := append([]byte(nil), good...)
		b[i] ^= 0x20
		inputs = append(inputs, b)
	}
	for _, in := range inputs {
		n.s.Handle(in)
	}
	n.s.wg.Wait()
	if n.s.Stats().Total.Load() != int64(len(inputs)) {
		t.Fatalf("total %d, want %d", n.s.Stats().Total.Load(), len(inputs))
	}
	n.stillServes()
}

// TestPipelineQuickActionAudit: a quick action's request record is written
// with its completion, as the caller sent it and in one event, before the
// reply; when that write fails the node fails closed, and the action's
// answer never leaves it.
func TestPipelineQuickActionAudit(t *testing.T) {
	p := newTestPKI(t)
	url := natstest.Start(t)
	tests := []struct {
		name     string
		auditor  Auditor
		failOpen bool
		status   protocol.StatusCode
		msg      string
		answer   bool // the reply carries the action's data
	}{
		{name: "written", auditor: &recordingAuditor{}, status: protocol.OK, msg: "OK", answer: true},
		{name: "fails closed", auditor: &failingAuditor{}, status: protocol.UnknownError, msg: auditUnavailable},
		{name: "fails open", auditor: &failingAuditor{}, failOpen: true, status: protocol.OK, msg: "OK", answer: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNode(t, p, url, func(o *Options) { o.Auditor, o.AuditFailOpen = tt.auditor, tt.failOpen })
			req := newRequest()
			req.Action, req.Data = "quick", map[string]any{"msg": 7.0} // normalized to int64 for the action
			n.s.Handle(signed(t, p.alice, req))
			rep := n.reply(req.ID)
			if rep.Status != tt.status || rep.Message != tt.msg {
				t.Fatalf("status %d %q, want %d %q", rep.Status, rep.Message, tt.status, tt.msg)
			}
			if got := rep.Data["answer"] != nil; got != tt.answer {
				t.Fatalf("reply data %v: answer present %v, want %v", rep.Data, got, tt.answer)
			}
			n.s.wg.Wait()
			switch a := tt.auditor.(type) {
			case *recordingAuditor:
				a.mu.Lock()
				defer a.mu.Unlock()
				if len(a.events) != 1 {
					t.Fatalf("%d audit events, want one with both records: %+v", len(a.events), a.events)
				}
				ev := a.events[0]
				if !ev.Complete || !ev.WithRequest || ev.Status != protocol.OK || !ev.Decision.Allowed {
					t.Fatalf("event %+v", ev)
				}
				if v, ok := ev.Request.Data["msg"].(float64); !ok || v != 7 {
					t.Fatalf("audited inputs %#v, want them as sent", ev.Request.Data)
				}
			case *failingAuditor:
				if a.calls.Load() != 1 {
					t.Fatalf("%d audit writes, want 1", a.calls.Load())
				}
			}
		})
	}
}
