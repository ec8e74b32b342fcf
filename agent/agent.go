// Package agent is the API for writing Marionette agents in Go. An agent is a
// DDL plus one handler per action; the node daemon validates every request
// against the DDL before a handler sees it, applies the action timeout through
// the context, and signs whatever the handler leaves in the Reply.
//
// The built-in agents (rpcutil, package, service) use this same API.
package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/marionette/mco/ddl"
	"github.com/marionette/mco/protocol"
)

// Request is what an action handler sees of a validated request.
type Request struct {
	ID         string
	Agent      string
	Action     string
	CallerID   string // "cert=<certname>"
	Sender     string
	Collective string
	Time       time.Time
	TTL        time.Duration
	Data       map[string]any // inputs, validated and with DDL defaults applied
}

// Reply is filled in by an action handler. It starts with status OK and the
// action's output defaults in Data.
type Reply struct {
	Status  protocol.StatusCode
	Message string
	Data    map[string]any
}

// Fail marks the reply as failed (status 1, Aborted) with a message.
func (r *Reply) Fail(format string, args ...any) {
	r.Status = protocol.Aborted
	r.Message = fmt.Sprintf(format, args...)
}

// FailWith marks the reply with a specific status and message.
func (r *Reply) FailWith(status protocol.StatusCode, format string, args ...any) {
	r.Status = status
	r.Message = fmt.Sprintf(format, args...)
}

// Handler runs one action. ctx is cancelled when the action's timeout expires;
// a handler that ignores it is abandoned and the node replies with a timeout.
type Handler func(ctx context.Context, req *Request, rep *Reply)

// Agent is a DDL with its action handlers.
type Agent struct {
	DDL      *ddl.Agent
	handlers map[string]Handler
	quick    map[string]bool
	config   map[string]string
}

// New returns an agent for the DDL with no actions registered yet.
func New(d *ddl.Agent) *Agent {
	return &Agent{DDL: d, handlers: make(map[string]Handler), quick: make(map[string]bool)}
}

// Name is the agent's name from its DDL.
func (a *Agent) Name() string { return a.DDL.Metadata.Name }

// Timeout is how long an action may run, from the DDL (default 10 s).
func (a *Agent) Timeout() time.Duration {
	if a.DDL.Metadata.Timeout <= 0 {
		return 10 * time.Second
	}
	return time.Duration(a.DDL.Metadata.Timeout) * time.Second
}

// SetConfig gives the agent its settings: the node passes the
// plugin.<agent>.<key> lines of server.conf, keyed without the
// "plugin.<agent>." prefix, before the agent serves its first request. The
// map is kept, not copied; nobody may change it afterwards.
func (a *Agent) SetConfig(settings map[string]string) { a.config = settings }

// Config returns one of the agent's settings (see SetConfig), as MCollective's
// agents read @config.pluginconf["<agent>.<key>"]. Handlers capture the Agent
// to read it.
func (a *Agent) Config(key string) (string, bool) {
	v, ok := a.config[key]
	return v, ok
}

// Register sets the handler for an action. The action must be in the DDL:
// registering an undocumented action is a programming error and panics.
func (a *Agent) Register(action string, h Handler) {
	if a.DDL.Action(action) == nil {
		panic(fmt.Sprintf("agent %s: action %q is not in the DDL", a.Name(), action))
	}
	a.handlers[action] = h
}

// RegisterQuick is Register for an action that returns within microseconds
// and never blocks (answers from memory, no I/O): a node runs its broadcast
// requests on the delivery goroutine, which keeps replies in step with
// requests when the node is saturated. Every other action runs on a
// goroutine of its own, so a slow one never holds up later requests.
func (a *Agent) RegisterQuick(action string, h Handler) {
	a.Register(action, h)
	a.quick[action] = true
}

// Quick reports whether an action was registered with RegisterQuick.
func (a *Agent) Quick(action string) bool { return a.quick[action] }

// Handler returns the handler for an action.
func (a *Agent) Handler(action string) (Handler, bool) {
	h, ok := a.handlers[action]
	return h, ok
}

// Typed adapts a function over typed request and reply structs to a Handler.
// Inputs are decoded into In with encoding/json (use `json` tags naming the DDL
// inputs); the returned Out is encoded into the reply's data. A returned error
// fails the reply with status 1 and the error as message.
func Typed[In, Out any](fn func(ctx context.Context, req *Request, in *In) (*Out, error)) Handler {
	return func(ctx context.Context, req *Request, rep *Reply) {
		var in In
		if len(req.Data) > 0 {
			b, err := json.Marshal(req.Data)
			if err == nil {
				err = json.Unmarshal(b, &in)
			}
			if err != nil {
				rep.FailWith(protocol.InvalidData, "decoding inputs: %v", err)
				return
			}
		}
		out, err := fn(ctx, req, &in)
		if err != nil {
			rep.Fail("%v", err)
		}
		if out == nil {
			return
		}
		b, err := json.Marshal(out)
		if err != nil {
			rep.FailWith(protocol.UnknownError, "encoding reply: %v", err)
			return
		}
		fields := map[string]any{}
		if err := json.Unmarshal(b, &fields); err != nil {
			rep.FailWith(protocol.UnknownError, "encoding reply: %v", err)
			return
		}
		if rep.Data == nil {
			rep.Data = fields
			return
		}
		for k, v := range fields {
			rep.Data[k] = v
		}
	}
}
