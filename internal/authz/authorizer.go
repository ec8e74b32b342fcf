package authz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/marionette/mco/filter"
)

// DefaultReloadInterval is how often a policy or groups file is stat'ed for
// changes when Options.ReloadInterval is zero.
const DefaultReloadInterval = time.Second

// maxCachedFiles bounds the per-path cache: agent names come from requests, so
// a stream of made-up agents must not grow memory without limit.
const maxCachedFiles = 1024

// Options configures an Authorizer; it mirrors the server config keys.
type Options struct {
	Dir               string // policy directory
	EnableDefault     bool   // fall back to <Dir>/<DefaultName>.policy when <agent>.policy is absent
	DefaultName       string // name of the fallback policy; "" means "default"
	AllowUnconfigured bool   // allow requests for agents with no policy file at all
	// PolicyDefault ("", "allow" or "deny") is the site-wide default used when
	// a policy file has no "policy default" line. A file's own line wins.
	PolicyDefault string
	// AgentDefaults maps agent name to "allow" or "deny": the per-agent
	// policy_default. It takes precedence over PolicyDefault for files without
	// a default line, and also decides for that agent when it has no policy
	// file at all (before AllowUnconfigured is considered).
	AgentDefaults map[string]string
	// ReloadInterval is the minimum time between checks of a file for changes;
	// zero means DefaultReloadInterval.
	ReloadInterval time.Duration
}

// Request is what is authorized: who calls which agent action on which node.
type Request struct {
	Caller string // "cert=<certname>"
	Agent  string
	Action string
	Node   filter.Node // this node's facts and classes; may be nil
}

// Authorizer decides requests against the policy files in a directory. Files
// are parsed once and re-parsed only when their size, mtime or inode changes;
// it is safe for concurrent use.
type Authorizer struct {
	opts      Options
	log       *slog.Logger
	now       func() time.Time // injectable for reload tests
	configErr error            // invalid Options: deny everything

	mu       sync.Mutex
	policies map[string]*cached[policyFile]
	groups   cached[groupsFile]
}

// policyFile and groupsFile are the parse results kept per file.
type policyFile struct{ policy *Policy }

type groupsFile struct {
	groups Groups
	err    error
}

// New returns an Authorizer for opts. Invalid options are logged and make
// every request denied rather than failing open. logger may be nil.
func New(opts Options, logger *slog.Logger) *Authorizer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.DefaultName == "" {
		opts.DefaultName = "default"
	}
	if opts.ReloadInterval <= 0 {
		opts.ReloadInterval = DefaultReloadInterval
	}
	a := &Authorizer{opts: opts, log: logger, now: time.Now, policies: map[string]*cached[policyFile]{}}
	a.configErr = validateOptions(opts)
	if a.configErr != nil {
		logger.Error("authorization config invalid, denying all requests", "error", a.configErr)
	}
	return a
}

func validateOptions(o Options) error {
	var errs []error
	if !validName(o.DefaultName) {
		errs = append(errs, fmt.Errorf("default policy name %q: letters, digits, '_' and '-' only", o.DefaultName))
	}
	if o.PolicyDefault != "" && o.PolicyDefault != "allow" && o.PolicyDefault != "deny" {
		errs = append(errs, fmt.Errorf("policy_default %q: want allow or deny", o.PolicyDefault))
	}
	for agent, v := range o.AgentDefaults {
		if v != "allow" && v != "deny" {
			errs = append(errs, fmt.Errorf("policy_default for agent %q is %q: want allow or deny", agent, v))
		}
	}
	return errors.Join(errs...)
}

// Authorize decides one request. It never returns an error: every failure
// (missing or broken files, bad names) is a deny with the reason filled in.
// The groups file is consulted only for policies that name groups, so a broken
// groups file denies exactly those. ctx bounds the data plugin calls a
// policy's compound conditions make (see Policy.Evaluate).
func (a *Authorizer) Authorize(ctx context.Context, req Request) Decision {
	if a.configErr != nil {
		return Decision{Reason: "authorization config invalid: " + a.configErr.Error()}
	}
	if !validName(req.Agent) {
		return Decision{Reason: fmt.Sprintf("invalid agent name %q", req.Agent)}
	}
	p, d, ok := a.policyFor(req.Agent)
	if !ok {
		return d
	}
	var groups Groups
	if p.Err() == nil && len(p.groupRefs) > 0 {
		g := a.loadGroups()
		if g.err != nil {
			return Decision{File: p.name, Reason: "groups file invalid: " + g.err.Error()}
		}
		groups = g.groups
	}
	d = p.Evaluate(ctx, req.Caller, req.Action, groups, req.Node)
	if d.Default && !p.hasDefault {
		if v, src := a.configuredDefault(req.Agent); v != "" {
			d.Allowed = v == "allow"
			d.Reason = fmt.Sprintf("no rule matched and no policy default: %s %s", src, v)
		}
	}
	return d
}

// configuredDefault returns the per-agent or site-wide default and which of
// the two it came from.
func (a *Authorizer) configuredDefault(agent string) (value, source string) {
	if v := a.opts.AgentDefaults[agent]; v != "" {
		return v, "agent policy_default"
	}
	if a.opts.PolicyDefault != "" {
		return a.opts.PolicyDefault, "site policy_default"
	}
	return "", ""
}

// policyFor finds the policy that governs agent. When ok is false, d is the
// final decision (no file, unreadable file).
func (a *Authorizer) policyFor(agent string) (p *Policy, d Decision, ok bool) {
	path := filepath.Join(a.opts.Dir, agent+".policy")
	e := a.loadPolicy(path)
	if e.state == fileMissing && a.opts.EnableDefault {
		path = filepath.Join(a.opts.Dir, a.opts.DefaultName+".policy")
		e = a.loadPolicy(path)
	}
	switch e.state {
	case fileUnreadable:
		return nil, Decision{File: path, Reason: "policy file unreadable: " + e.err.Error()}, false
	case fileMissing:
		if v := a.opts.AgentDefaults[agent]; v != "" {
			return nil, Decision{Allowed: v == "allow", Reason: "no policy file: agent policy_default " + v, Default: true}, false
		}
		if a.opts.AllowUnconfigured {
			return nil, Decision{Allowed: true, Reason: "no policy file: allow_unconfigured", Default: true}, false
		}
		return nil, Decision{Reason: fmt.Sprintf("no policy file for agent %q", agent), Default: true}, false
	}
	return e.val.policy, Decision{}, true
}

// loadPolicy returns a snapshot of the cache entry for path, refreshed if due.
// The lock is held while a changed file is parsed; policies are small and
// changes rare, and it keeps one parse per change however many requests race.
func (a *Authorizer) loadPolicy(path string) cached[policyFile] {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.policies[path]
	if e == nil {
		if len(a.policies) >= maxCachedFiles {
			clear(a.policies)
		}
		e = &cached[policyFile]{}
		a.policies[path] = e
	}
	if data, changed := e.refresh(path, a.now(), a.opts.ReloadInterval); changed {
		switch e.state {
		case fileLoaded:
			p, errs := ParsePolicy(path, bytes.NewReader(data))
			for _, err := range errs {
				a.log.Error("policy file invalid, denying all requests it governs", "error", err.Error())
			}
			e.val = policyFile{policy: p}
		case fileUnreadable:
			a.log.Error("policy file unreadable, denying all requests it governs", "path", path, "error", e.err)
		}
	}
	return *e
}

func (a *Authorizer) loadGroups() groupsFile {
	path := filepath.Join(a.opts.Dir, "groups")
	a.mu.Lock()
	defer a.mu.Unlock()
	e := &a.groups
	if data, changed := e.refresh(path, a.now(), a.opts.ReloadInterval); changed {
		switch e.state {
		case fileLoaded:
			g, err := ParseGroups(path, bytes.NewReader(data))
			if err != nil {
				a.log.Error("groups file invalid, denying requests that use groups", "error", err.Error())
			}
			e.val = groupsFile{groups: g, err: err}
		case fileUnreadable:
			a.log.Error("groups file unreadable, denying requests that use groups", "path", path, "error", e.err)
		}
	}
	switch e.state {
	case fileUnreadable:
		return groupsFile{err: fmt.Errorf("read %s: %w", path, e.err)}
	case fileMissing:
		return groupsFile{} // no groups file: no groups, so any group reference is unknown
	}
	return e.val
}
