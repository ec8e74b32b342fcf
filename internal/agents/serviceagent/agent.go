// Package serviceagent is the built-in "service" agent: status, start, stop
// and restart of operating system services through systemd or, where
// systemd is not the init, the sysvinit service(8) command.
//
// Its DDL is the Choria service agent's, so existing clients work. Service
// names are checked by the DDL and again here, and commands always run with
// an argv, never through a shell.
package serviceagent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"

	_ "embed"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/ddl"
	"github.com/marionette/mco/internal/agents/command"
	"github.com/marionette/mco/protocol"
)

//go:embed service.json
var ddlJSON []byte

// DDLJSON returns a copy of the agent's DDL file.
func DDLJSON() []byte { return bytes.Clone(ddlJSON) }

// DDL returns the agent's DDL, freshly parsed.
func DDL() (*ddl.Agent, error) {
	d, err := ddl.Parse("serviceagent/service.json", ddlJSON)
	if err != nil {
		return nil, fmt.Errorf("service agent DDL: %w", err)
	}
	return d, nil
}

// namePattern is also the DDL's validation of the service input (a test
// keeps them in step). The first character must be alphanumeric so that a
// name can never be taken for a command-line option.
const (
	namePattern    = `^[a-zA-Z0-9][a-zA-Z0-9@._:+-]*$`
	maxInputLength = 90
)

// Options configures the agent.
type Options struct {
	// Init chooses the init system; Detect (the zero value) looks for
	// /run/systemd/system.
	Init InitSystem
	// Path is the PATH used to find and run systemctl or service; "" means
	// the daemon's own PATH.
	Path string
	// Logger receives debug logs of the commands run; nil discards them.
	Logger *slog.Logger
}

// New returns the service agent. It fails with an error wrapping
// ErrNoBackend when the init system's tool is not installed, in which case
// the daemon should leave the agent inactive.
func New(opts Options) (*agent.Agent, error) {
	d, err := DDL()
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	be, err := newBackend(opts, log)
	if err != nil {
		return nil, err
	}
	h := &handlers{backend: be, name: regexp.MustCompile(namePattern)}
	a := agent.New(d)
	a.Register("status", h.status)
	a.Register("start", h.change("start", Running))
	a.Register("stop", h.change("stop", Stopped))
	a.Register("restart", h.change("restart", Running))
	return a, nil
}

// newBackend picks the init system's backend and checks its tool exists.
func newBackend(opts Options, log *slog.Logger) (backend, error) {
	r := command.Runner{Path: opts.Path, Log: log}
	initSys := opts.Init
	if initSys == Detect {
		initSys = SysVinit
		if _, err := os.Stat(systemdMarker); err == nil {
			initSys = Systemd
		}
	}
	var be backend
	var tool string
	switch initSys {
	case Systemd:
		be, tool = systemd{run: r}, "systemctl"
	case SysVinit:
		be, tool = sysvinit{run: r}, "service"
	default:
		return nil, fmt.Errorf("service agent: unknown init system %q (want %q or %q)", initSys, Systemd, SysVinit)
	}
	if _, err := r.LookPath(tool); err != nil {
		return nil, fmt.Errorf("service agent: %w: %w", ErrNoBackend, err)
	}
	return be, nil
}

// StatusQuery returns a function reporting a service's state (Running or
// Stopped), for the "service" data plugin. It fails like New when the node
// has no service manager.
func StatusQuery(opts Options) (func(ctx context.Context, name string) (string, error), error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	be, err := newBackend(opts, log)
	if err != nil {
		return nil, err
	}
	valid := regexp.MustCompile(namePattern)
	return func(ctx context.Context, name string) (string, error) {
		if !valid.MatchString(name) || len(name) > maxInputLength {
			return "", fmt.Errorf("service name %q is not allowed (must match %s)", name, namePattern)
		}
		return be.status(ctx, name)
	}, nil
}

// handlers holds the agent's actions.
type handlers struct {
	backend backend
	name    *regexp.Regexp
}

func (h *handlers) status(ctx context.Context, req *agent.Request, rep *agent.Reply) {
	name, ok := h.serviceInput(req, rep)
	if !ok {
		return
	}
	st, err := h.backend.status(ctx, name)
	if err != nil {
		rep.Fail("could not get the status of %s: %v", name, err)
		return
	}
	setStatus(rep, st)
}

// change runs verb and checks the service ends up in state want. Starting a
// running service or stopping a stopped one is refused rather than silently
// accepted, so the operator learns the fleet was not as they thought. Every
// reply carries the service's resulting status.
func (h *handlers) change(verb, want string) agent.Handler {
	return func(ctx context.Context, req *agent.Request, rep *agent.Reply) {
		name, ok := h.serviceInput(req, rep)
		if !ok {
			return
		}
		before, err := h.backend.status(ctx, name)
		if err != nil {
			rep.Fail("could not get the status of %s: %v", name, err)
			return
		}
		if verb != "restart" && before == want {
			setStatus(rep, before)
			rep.Fail("%s is already %s", name, before)
			return
		}

		err = h.backend.change(ctx, verb, name)
		after, serr := h.backend.status(ctx, name)
		if serr == nil {
			setStatus(rep, after)
		}
		switch {
		case err != nil:
			rep.Fail("could not %s %s: %v", verb, name, err)
		case serr != nil:
			rep.Fail("could not get the status of %s after %s: %v", name, verb, serr)
		case after != want:
			rep.Fail("%s is %s after %s", name, after, verb)
		}
	}
}

// serviceInput returns the validated "service" input, or fails the reply
// with status 3 (missing) or 4 (invalid).
func (h *handlers) serviceInput(req *agent.Request, rep *agent.Reply) (string, bool) {
	v, present := req.Data["service"]
	if !present || v == nil {
		rep.FailWith(protocol.MissingData, "missing required input \"service\"")
		return "", false
	}
	s, isString := v.(string)
	switch {
	case !isString:
		rep.FailWith(protocol.InvalidData, "input \"service\": want a string, got %T", v)
	case s == "":
		rep.FailWith(protocol.InvalidData, "input \"service\": must not be empty")
	case len(s) > maxInputLength:
		rep.FailWith(protocol.InvalidData, "input \"service\": longer than %d characters", maxInputLength)
	case !h.name.MatchString(s):
		rep.FailWith(protocol.InvalidData, "input \"service\": %q has characters that are not allowed (must match %s)", s, namePattern)
	default:
		return s, true
	}
	return "", false
}

func setStatus(rep *agent.Reply, status string) {
	if rep.Data == nil {
		rep.Data = map[string]any{}
	}
	rep.Data["status"] = status
}
