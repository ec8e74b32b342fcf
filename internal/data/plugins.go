package data

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// NewSysctl returns the "sysctl" plugin: sysctl('net.ipv4.ip_forward') reads
// <root>/net/ipv4/ip_forward. root is normally /proc/sys ("" means that).
// Fields: present (bool), value (trimmed file content).
func NewSysctl(root string) Plugin {
	if root == "" {
		root = "/proc/sys"
	}
	return sysctl{root: root}
}

type sysctl struct{ root string }

func (sysctl) Name() string { return "sysctl" }

func (s sysctl) Query(_ context.Context, key string) (map[string]any, error) {
	parts := strings.Split(key, ".")
	for _, p := range parts {
		// Keys are dotted names, never paths: refuse anything that could
		// leave root.
		if p == "" || p == ".." || strings.ContainsAny(p, `/\`) {
			return nil, fmt.Errorf("sysctl: invalid key %q", key)
		}
	}
	b, err := os.ReadFile(filepath.Join(append([]string{s.root}, parts...)...))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]any{"present": false}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sysctl %s: %w", key, err)
	}
	return map[string]any{"present": true, "value": strings.TrimSpace(string(b))}, nil
}

// NewFact returns the "fact" plugin: fact('os.release.major') looks the
// dotted path up with lookup (the node's fact lookup).
// Fields: present (bool), value (the fact, possibly a list or map).
func NewFact(lookup func(path string) (any, bool)) Plugin {
	return factPlugin{lookup: lookup}
}

type factPlugin struct {
	lookup func(string) (any, bool)
}

func (factPlugin) Name() string { return "fact" }

func (f factPlugin) Query(_ context.Context, path string) (map[string]any, error) {
	if path == "" {
		return nil, errors.New("fact: empty fact name")
	}
	v, ok := f.lookup(path)
	if !ok {
		return map[string]any{"present": false}, nil
	}
	return map[string]any{"present": true, "value": v}, nil
}

// NewAgent returns the "agent" plugin: agent('package') reports the agent's
// DDL metadata as returned by lookup (name, description, author, version,
// license, timeout, url), plus present (bool).
func NewAgent(lookup func(name string) (map[string]any, bool)) Plugin {
	return agentPlugin{lookup: lookup}
}

type agentPlugin struct {
	lookup func(string) (map[string]any, bool)
}

func (agentPlugin) Name() string { return "agent" }

func (a agentPlugin) Query(_ context.Context, name string) (map[string]any, error) {
	if name == "" {
		return nil, errors.New("agent: empty agent name")
	}
	meta, ok := a.lookup(name)
	if !ok {
		return map[string]any{"present": false}, nil
	}
	res := make(map[string]any, len(meta)+1)
	for k, v := range meta {
		res[k] = v
	}
	res["present"] = true
	return res, nil
}

// NewCollective returns the "collective" plugin: collective('production')
// reports whether this node is a member. collectives returns the node's
// current memberships. Field: member (bool).
func NewCollective(collectives func() []string) Plugin {
	return collectivePlugin{collectives: collectives}
}

type collectivePlugin struct {
	collectives func() []string
}

func (collectivePlugin) Name() string { return "collective" }

func (c collectivePlugin) Query(_ context.Context, name string) (map[string]any, error) {
	if name == "" {
		return nil, errors.New("collective: empty collective name")
	}
	member := false
	for _, have := range c.collectives() {
		if have == name {
			member = true
			break
		}
	}
	return map[string]any{"member": member}, nil
}

// NewPackage returns the "package" plugin: package('openssl') reports one
// package from the node's package database. status is the package agent's
// query. Fields: installed (bool), ensure, version, release, arch, provider.
func NewPackage(status func(ctx context.Context, name string) (map[string]any, error)) Plugin {
	return funcPlugin{name: "package", query: status}
}

// NewService returns the "service" plugin: service('nginx') reports a
// service's state. status is the service agent's query (running or
// stopped). Fields: status, running (bool).
func NewService(status func(ctx context.Context, name string) (string, error)) Plugin {
	return funcPlugin{name: "service", query: func(ctx context.Context, name string) (map[string]any, error) {
		st, err := status(ctx, name)
		if err != nil {
			return nil, err
		}
		return map[string]any{"status": st, "running": st == "running"}, nil
	}}
}

// funcPlugin adapts a query function to a Plugin.
type funcPlugin struct {
	name  string
	query func(ctx context.Context, arg string) (map[string]any, error)
}

func (p funcPlugin) Name() string { return p.name }

func (p funcPlugin) Query(ctx context.Context, arg string) (map[string]any, error) {
	if arg == "" {
		return nil, fmt.Errorf("%s: empty query", p.name)
	}
	return p.query(ctx, arg)
}

// NewPuppet returns the "puppet" plugin: puppet() reports the Puppet
// agent's state (the puppet agent's status query): enabled, applying,
// idling, daemon_present, status, disable_message, lastrun and
// since_lastrun. Its argument is ignored: puppet() is the query with an empty argument,
// the same as puppet("").
func NewPuppet(status func(ctx context.Context, arg string) (map[string]any, error)) Plugin {
	return puppetPlugin{status: status}
}

type puppetPlugin struct {
	status func(context.Context, string) (map[string]any, error)
}

func (puppetPlugin) Name() string { return "puppet" }

func (p puppetPlugin) Query(ctx context.Context, arg string) (map[string]any, error) {
	return p.status(ctx, arg)
}
