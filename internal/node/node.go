// Package node wires one Marionette node: its agent registry, data plugins,
// auditor, the request pipeline (internal/server), the built-in rpcutil agent,
// the other built-in agents it is given and the external agents of its
// libdirs. The node daemon (internal/daemon), `mco dev` and `mco demo`
// (internal/devcluster), the benchmarks and the tests all build nodes here, so
// a node is assembled the same way everywhere.
//
// Like tailscale's tsd.System, Node is the one struct that holds a node's
// parts; Build is the only place they are connected. To give every node a new
// built-in agent, add an AgentFunc to the daemon's list (daemon.BuiltinAgents)
// — tests and dev collectives pass their own. To add a node-wide concern
// (metrics, a security default), add a field to Spec and wire it in Build.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/internal/agents"
	"github.com/marionette/mco/internal/agents/external"
	"github.com/marionette/mco/internal/agents/packageagent"
	"github.com/marionette/mco/internal/agents/rpcutil"
	"github.com/marionette/mco/internal/agents/serviceagent"
	"github.com/marionette/mco/internal/audit"
	"github.com/marionette/mco/internal/data"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/internal/server"
)

// AgentFunc builds built-in agents for a node. It may return none, e.g. when
// the machine lacks what the agent drives (no package database); it runs once
// per node, after rpcutil, with the node it is for.
type AgentFunc func(n *Node) ([]*agent.Agent, error)

// Spec is everything a node is built from. Identity and Verifier are required;
// the rest has working defaults.
type Spec struct {
	Identity    *security.Identity // certificate and key; its certname is the node identity
	Verifier    *security.Verifier
	Collectives []string          // the first is the main collective; default mcollective
	Facts       server.Facts      // nil: no facts
	Authorizer  server.Authorizer // nil: every authenticated caller may run every action
	// Audit, when set, records every request in this hash-chained log. The
	// node writes to it but does not own it: the caller closes it.
	Audit *audit.Log
	// AuditFailOpen keeps serving when the audit log fails.
	AuditFailOpen  bool
	MaxMessageSize int
	Skew           time.Duration
	MaxTTL         time.Duration
	// ReplayFile keeps the replay cache across restarts ("": memory only).
	ReplayFile string
	// Concurrency is server.Options.Concurrency: how many requests the node
	// verifies and checks at once (0: one per core).
	Concurrency int
	Version     string
	Logger      *slog.Logger // nil discards
	// MachinePlugins are the data plugins that describe the machine rather
	// than the node (package, service); an in-process collective shares one
	// set between its nodes. The node adds its own (fstat, sysctl, fact,
	// agent, collective).
	MachinePlugins []data.Plugin
	// RPCUtil configures the built-in rpcutil agent every node hosts.
	RPCUtil rpcutil.Options
	// Agents build the node's other built-in agents, in order.
	Agents []AgentFunc
	// Disabled names agents (built-in or external) the node must not host;
	// rpcutil cannot be disabled.
	Disabled []string
	// Libdirs load external agents (<libdir>/agent/*); Reload and
	// SetExternal swap them when the files change.
	Libdirs []string
	// AgentGroups, when set, records the process group of every external
	// agent run (reaper.Groups), so a restarted daemon can kill the runs a
	// killed predecessor left behind.
	AgentGroups external.ProcessGroups
	// PluginConfig holds each agent's plugin.<agent>.<key> settings, by agent
	// then key; built-in and external agents get theirs.
	PluginConfig map[string]map[string]string
	// OnlyExternal, when set, loads only the external agent of that name
	// (a detached job's runner, which runs one action of one agent).
	OnlyExternal string
	// Jobs starts Async requests as detached jobs (server.Options.Jobs).
	Jobs server.Detacher
	// Observer is told how every request ended (server.Options.Observer:
	// the daemon's metrics).
	Observer server.Observer
	// CurrentIdentity returns the identity that signs replies now, for
	// certificates renewed on disk (server.Options.CurrentIdentity); nil
	// signs with Identity.
	CurrentIdentity func() *security.Identity
	// QuietLoad does not log external agents that fail to load (an
	// in-process collective reports them for its first node only).
	QuietLoad bool
	// Server adjusts the server options last (tests and benchmarks).
	Server func(*server.Options)
}

// Node is one assembled node. Start connects it; Stop waits for running
// actions. It is what rpcutil reports on and what registration announces.
type Node struct {
	spec   Spec
	log    *slog.Logger
	agents *agents.Registry
	data   *data.Registry
	srv    *server.Server
	loader *external.Loader

	mu       sync.Mutex // serialises external agent reloads
	extNames []string   // the external agents currently hosted
	builtin  map[string]bool
}

// Build assembles a node from its spec. External agents that fail to load
// are logged and left out; any other problem is an error.
func Build(spec Spec) (*Node, error) {
	if spec.Identity == nil || spec.Verifier == nil {
		return nil, errors.New("a node needs an identity and a verifier")
	}
	if len(spec.Collectives) == 0 {
		spec.Collectives = []string{"mcollective"}
	}
	if spec.Logger == nil {
		spec.Logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{spec: spec, log: spec.Logger, agents: agents.NewRegistry()}
	if spec.Facts == nil {
		n.spec.Facts = noFacts{}
	}
	n.data = n.dataPlugins(spec.MachinePlugins)
	opts := server.Options{
		Identity: spec.Identity, Verifier: spec.Verifier, Collectives: spec.Collectives,
		Facts: n.spec.Facts, Agents: n.agents, Data: n.data, Authorizer: spec.Authorizer,
		AuditFailOpen: spec.AuditFailOpen, MaxMessageSize: spec.MaxMessageSize,
		Skew: spec.Skew, MaxTTL: spec.MaxTTL, ReplayFile: spec.ReplayFile, Version: spec.Version, Logger: spec.Logger,
		Concurrency: spec.Concurrency, Jobs: spec.Jobs,
		Observer: spec.Observer, CurrentIdentity: spec.CurrentIdentity,
	}
	if spec.Audit != nil {
		opts.Auditor = &Auditor{Log: spec.Audit, Node: spec.Identity.Name(), Secrets: n.agents.Secrets}
	}
	if spec.Server != nil {
		spec.Server(&opts)
	}
	var err error
	if n.srv, err = server.New(opts); err != nil {
		return nil, err
	}
	ru, err := rpcutil.New(n, spec.RPCUtil)
	if err != nil {
		return nil, err
	}
	builtin := []*agent.Agent{ru}
	for _, f := range spec.Agents {
		more, err := f(n)
		if err != nil {
			return nil, err
		}
		builtin = append(builtin, n.enabled(more)...)
	}
	n.builtin = make(map[string]bool, len(builtin))
	for _, a := range builtin {
		n.builtin[a.Name()] = true
		a.SetConfig(spec.PluginConfig[a.Name()])
	}
	n.agents.Replace(nil, builtin...)
	if len(spec.Libdirs) > 0 {
		n.loader = external.NewLoader(external.Options{LibDirs: spec.Libdirs, Facts: n.spec.Facts.Facts, Logger: spec.Logger, Config: spec.PluginConfig, Groups: spec.AgentGroups, Only: spec.OnlyExternal})
		if _, err := n.Reload(); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// dataPlugins are the node's own data plugins plus the machine's.
func (n *Node) dataPlugins(machine []data.Plugin) *data.Registry {
	plugins := []data.Plugin{
		data.NewFStat(time.Now),
		data.NewSysctl("/proc/sys"),
		data.NewFact(n.spec.Facts.Fact),
		data.NewAgent(func(name string) (map[string]any, bool) {
			a, ok := n.agents.Agent(name)
			if !ok {
				return nil, false
			}
			m := a.DDL.Metadata
			return map[string]any{"name": m.Name, "description": m.Description, "author": m.Author,
				"version": m.Version, "license": m.License, "timeout": m.Timeout, "url": m.URL}, true
		}),
		data.NewCollective(n.Collectives),
	}
	return data.New(append(plugins, machine...)...)
}

// enabled drops the agents the spec disables (rpcutil never is).
func (n *Node) enabled(in []*agent.Agent) []*agent.Agent {
	return slices.DeleteFunc(slices.Clone(in), func(a *agent.Agent) bool {
		return a.Name() != "rpcutil" && slices.Contains(n.spec.Disabled, a.Name())
	})
}

// Loader is the node's external agent loader (nil without libdirs): its Run
// reports changes, which SetExternal applies.
func (n *Node) Loader() *external.Loader { return n.loader }

// Reload loads the external agents from the libdirs again and hosts them;
// it returns their names.
func (n *Node) Reload() ([]string, error) {
	if n.loader == nil {
		return nil, nil
	}
	ext, errs := n.loader.Load()
	if !n.spec.QuietLoad {
		for _, e := range errs {
			n.log.Error("external agent not loaded", "err", e)
		}
	}
	return n.SetExternal(ext)
}

// SetExternal replaces the node's external agents with ext (the complete new
// set, as external.Loader reports it), leaving out those whose name a
// built-in agent has — an agent directory must not replace rpcutil, nor
// leave a node without it when the file goes away again — and the disabled
// ones. It returns the names now hosted.
func (n *Node) SetExternal(ext []*agent.Agent) ([]string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var keep []*agent.Agent
	var names []string
	for _, a := range n.enabled(ext) {
		if n.builtin[a.Name()] {
			n.log.Error("external agent ignored: a built-in agent has that name", "agent", a.Name())
			continue
		}
		keep = append(keep, a)
		names = append(names, a.Name())
	}
	n.agents.Replace(n.extNames, keep...)
	n.extNames = names
	if err := n.srv.Resubscribe(); err != nil {
		return nil, fmt.Errorf("reloading external agents: %w", err)
	}
	return names, nil
}

// IsExternal reports whether the named agent is one of the node's external
// agents (metrics count their runs).
func (n *Node) IsExternal(name string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Contains(n.extNames, name)
}

// Server is the node's request pipeline.
func (n *Node) Server() *server.Server { return n.srv }

// Start subscribes the node on an established connection, dialled with the
// node's certificate.
func (n *Node) Start(nc *nats.Conn) error { return n.srv.Start(nc) }

// Stop unsubscribes and waits for running actions to reply.
func (n *Node) Stop() { n.srv.Stop() }

// Identity is the node's name.
func (n *Node) Identity() string { return n.spec.Identity.Name() }

// Collectives lists the node's collectives, main first.
func (n *Node) Collectives() []string { return n.srv.Collectives() }

// Version is the daemon version.
func (n *Node) Version() string { return n.spec.Version }

// Agent returns a hosted agent.
func (n *Node) Agent(name string) (*agent.Agent, bool) { return n.agents.Agent(name) }

// AgentNames lists the hosted agents, sorted.
func (n *Node) AgentNames() []string { return n.agents.AgentNames() }

// Facts returns the node's current facts.
func (n *Node) Facts() map[string]any { return n.spec.Facts.Facts() }

// Fact looks up one fact by dotted path.
func (n *Node) Fact(path string) (any, bool) { return n.spec.Facts.Fact(path) }

// Classes returns the node's classes.
func (n *Node) Classes() []string { return n.spec.Facts.Classes() }

// StatsSnapshot returns the pipeline's counters.
func (n *Node) StatsSnapshot() map[string]any { return n.srv.Stats().Snapshot() }

// Stats exposes the pipeline's counters.
func (n *Node) Stats() *server.Stats { return n.srv.Stats() }

// DataPlugins lists the data plugins the node answers.
func (n *Node) DataPlugins() []string { return n.data.Names() }

// DataQuery runs a data plugin query (rpcutil get_data).
func (n *Node) DataQuery(ctx context.Context, plugin, arg string) (map[string]any, error) {
	return n.data.Query(ctx, plugin, arg)
}

var _ rpcutil.Node = (*Node)(nil)

type noFacts struct{}

func (noFacts) Facts() map[string]any   { return map[string]any{} }
func (noFacts) Fact(string) (any, bool) { return nil, false }
func (noFacts) Classes() []string       { return nil }

// MachinePlugins returns the data plugins that describe the machine rather
// than one node — package and service — present only when the machine has a
// package database or service manager, so that the plugin list a node
// reports is what it can answer. Build them once per process: an in-process
// collective shares them between its nodes.
func MachinePlugins(log *slog.Logger) []data.Plugin {
	var out []data.Plugin
	if status, err := packageagent.StatusQuery("", log); err == nil {
		out = append(out, data.NewPackage(status))
	}
	if status, err := serviceagent.StatusQuery(serviceagent.Options{Logger: log}); err == nil {
		out = append(out, data.NewService(status))
	}
	return out
}
