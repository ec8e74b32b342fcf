// Package rpcutil is the built-in utility agent every node hosts: ping,
// inventory, facts, data plugin queries and the daemon's own statistics.
package rpcutil

import (
	"context"
	_ "embed"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/ddl"
)

//go:embed rpcutil.json
var ddlJSON []byte

// DDL returns the agent's DDL. It is parsed once per process, on first use:
// a parsed DDL is immutable, and an in-process collective of thousands of
// nodes would otherwise parse it thousands of times.
func DDL() (*ddl.Agent, error) { return parsedDDL() }

var parsedDDL = sync.OnceValues(func() (*ddl.Agent, error) { return ddl.Parse("rpcutil.json", ddlJSON) })

// Node is what rpcutil reports on.
type Node interface {
	Identity() string
	Collectives() []string
	Version() string
	AgentNames() []string
	Agent(name string) (*agent.Agent, bool)
	Facts() map[string]any
	Fact(path string) (any, bool)
	Classes() []string
	StatsSnapshot() map[string]any
	DataPlugins() []string
	DataQuery(ctx context.Context, plugin, arg string) (map[string]any, error)
}

// Options configures the agent.
type Options struct {
	// ConfigItems are the configuration values get_config_item may reveal.
	// Secrets (key paths and the like) must not be put here.
	ConfigItems map[string]any
	ConfigFile  string
}

// New builds the rpcutil agent for a node.
func New(n Node, opts Options) (*agent.Agent, error) {
	d, err := DDL()
	if err != nil {
		return nil, err
	}
	a := agent.New(d)
	// Every action answers from memory and is quick, except get_data: data
	// plugins read files and run tools.
	a.RegisterQuick("ping", func(_ context.Context, _ *agent.Request, rep *agent.Reply) {
		rep.Data["pong"] = time.Now().Unix()
	})
	a.RegisterQuick("inventory", func(_ context.Context, _ *agent.Request, rep *agent.Reply) {
		cols := n.Collectives()
		rep.Data["agents"] = n.AgentNames()
		rep.Data["facts"] = n.Facts()
		rep.Data["classes"] = nonNil(n.Classes())
		rep.Data["version"] = n.Version()
		rep.Data["main_collective"] = cols[0]
		rep.Data["collectives"] = cols
		rep.Data["data_plugins"] = nonNil(n.DataPlugins())
		rep.Data["machines"] = map[string]any{}
		rep.Data["upgradable"] = false
	})
	a.RegisterQuick("get_fact", func(_ context.Context, req *agent.Request, rep *agent.Reply) {
		name, _ := req.Data["fact"].(string)
		rep.Data["fact"] = name
		if v, ok := n.Fact(name); ok {
			rep.Data["value"] = v
		}
	})
	a.RegisterQuick("get_facts", func(_ context.Context, req *agent.Request, rep *agent.Reply) {
		list, _ := req.Data["facts"].(string)
		values := map[string]any{}
		for _, f := range strings.Split(list, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			v, _ := n.Fact(f)
			values[f] = v
		}
		rep.Data["values"] = values
	})
	a.Register("get_data", func(ctx context.Context, req *agent.Request, rep *agent.Reply) {
		source, _ := req.Data["source"].(string)
		query, _ := req.Data["query"].(string)
		out, err := n.DataQuery(ctx, source, query)
		if err != nil {
			rep.Fail("data plugin %s: %v", source, err)
			return
		}
		for k, v := range out {
			rep.Data[k] = v
		}
	})
	a.RegisterQuick("agent_inventory", func(_ context.Context, _ *agent.Request, rep *agent.Reply) {
		var list []map[string]any
		for _, name := range n.AgentNames() {
			ag, ok := n.Agent(name)
			if !ok {
				continue
			}
			m := ag.DDL.Metadata
			list = append(list, map[string]any{
				"agent": name, "name": m.Name, "description": m.Description, "author": m.Author,
				"license": m.License, "version": m.Version, "url": m.URL, "timeout": m.Timeout,
			})
		}
		rep.Data["agents"] = list
	})
	a.RegisterQuick("collective_info", func(_ context.Context, _ *agent.Request, rep *agent.Reply) {
		cols := n.Collectives()
		rep.Data["main_collective"] = cols[0]
		rep.Data["collectives"] = cols
	})
	a.RegisterQuick("daemon_stats", func(_ context.Context, _ *agent.Request, rep *agent.Reply) {
		for k, v := range n.StatsSnapshot() {
			rep.Data[k] = v
		}
		rep.Data["agents"] = n.AgentNames()
		rep.Data["pid"] = os.Getpid()
		rep.Data["threads"] = []string{fmt.Sprintf("%d goroutines", runtime.NumGoroutine())}
		rep.Data["version"] = n.Version()
		rep.Data["configfile"] = opts.ConfigFile
		rep.Data["times"] = map[string]any{}
	})
	a.RegisterQuick("get_config_item", func(_ context.Context, req *agent.Request, rep *agent.Reply) {
		item, _ := req.Data["item"].(string)
		rep.Data["item"] = item
		v, ok := opts.ConfigItems[item]
		if !ok {
			keys := slices.Sorted(maps.Keys(opts.ConfigItems))
			rep.Fail("unknown or secret configuration item %q (available: %s)", item, strings.Join(keys, ", "))
			return
		}
		rep.Data["value"] = v
	})
	return a, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
