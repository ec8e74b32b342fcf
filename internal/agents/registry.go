// Package agents holds the set of agents a node hosts. The node builder
// (internal/node) owns one Registry per node; the server reads it for every
// request, rpcutil and the data plugins read it for inventories, and external
// agent reloads swap part of it. The agent implementations live in the
// subpackages (rpcutil, packageagent, serviceagent, auditagent, external).
package agents

import (
	"maps"
	"slices"
	"sync/atomic"

	"github.com/marionette/mco/agent"
)

// Registry is a node's agents by name. Reads are lock-free: every request
// looks its agent up, while changes are rare (startup, reloads), so a change
// copies the map and swaps it in.
type Registry struct {
	m atomic.Pointer[map[string]*agent.Agent]
}

// NewRegistry returns a registry holding the given agents.
func NewRegistry(agents ...*agent.Agent) *Registry {
	r := &Registry{}
	m := make(map[string]*agent.Agent, len(agents))
	for _, a := range agents {
		m[a.Name()] = a
	}
	r.m.Store(&m)
	return r
}

// Agent returns a hosted agent.
func (r *Registry) Agent(name string) (*agent.Agent, bool) {
	a, ok := (*r.m.Load())[name]
	return a, ok
}

// AgentNames lists the hosted agents, sorted.
func (r *Registry) AgentNames() []string {
	return slices.Sorted(maps.Keys(*r.m.Load()))
}

// Replace removes the named agents and adds (or replaces) the given ones in
// one step, so that a request never sees a half-reloaded set.
func (r *Registry) Replace(remove []string, add ...*agent.Agent) {
	m := maps.Clone(*r.m.Load())
	for _, n := range remove {
		delete(m, n)
	}
	for _, a := range add {
		m[a.Name()] = a
	}
	r.m.Store(&m)
}

// Secrets returns the names of an action's secret inputs (masked in the
// audit log); none for an unknown agent or action.
func (r *Registry) Secrets(agentName, action string) []string {
	a, ok := r.Agent(agentName)
	if !ok {
		return nil
	}
	act := a.DDL.Action(action)
	if act == nil {
		return nil
	}
	var out []string
	for name, in := range act.Input {
		if in.Secret {
			out = append(out, name)
		}
	}
	return out
}
