// Package data implements data plugins: named queries a node answers about
// itself (fstat('/etc/issue'), sysctl('vm.swappiness'), ...). They back the
// data functions of -S compound filters, ActionPolicy compound rules and
// rpcutil get_data. Each node builds its own Registry from the plugins it
// offers; there is no global registry.
package data

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Plugin answers queries such as fstat('/etc/hosts'). A result is a flat map
// of named fields; "the thing does not exist" is a result (present=false),
// not an error.
type Plugin interface {
	Name() string
	Query(ctx context.Context, arg string) (map[string]any, error)
}

// ErrUnknownPlugin is returned (wrapped) by Registry.Query for a name no
// plugin registered.
var ErrUnknownPlugin = errors.New("unknown data plugin")

// KnownNames lists the standard data plugin names, for client-side
// validation of -S expressions before a request is sent.
func KnownNames() []string {
	return []string{"agent", "collective", "fact", "fstat", "package", "puppet", "service", "sysctl"}
}

// Registry holds a node's data plugins by name. It is read-only after New and
// safe for concurrent use.
type Registry struct {
	plugins map[string]Plugin
}

// New builds a registry; a later plugin with the same name replaces an
// earlier one, so callers can override a standard plugin.
func New(plugins ...Plugin) *Registry {
	r := &Registry{plugins: make(map[string]Plugin, len(plugins))}
	for _, p := range plugins {
		r.plugins[p.Name()] = p
	}
	return r
}

// Query runs plugin name with arg. The result is never nil on success.
func (r *Registry) Query(ctx context.Context, name, arg string) (map[string]any, error) {
	p, ok := r.lookup(name)
	if !ok {
		return nil, fmt.Errorf("data plugin %q: %w", name, ErrUnknownPlugin)
	}
	res, err := p.Query(ctx, arg)
	if err != nil {
		return nil, fmt.Errorf("data plugin %s(%q): %w", name, arg, err)
	}
	if res == nil {
		res = map[string]any{}
	}
	return res, nil
}

// Names lists the registered plugin names, sorted.
func (r *Registry) Names() []string {
	if r == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(r.plugins))
}

// Has reports whether a plugin called name is registered.
func (r *Registry) Has(name string) bool {
	_, ok := r.lookup(name)
	return ok
}

func (r *Registry) lookup(name string) (Plugin, bool) {
	if r == nil {
		return nil, false
	}
	p, ok := r.plugins[name]
	return p, ok
}
