package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/marionette/mco/ddl"
	"github.com/marionette/mco/internal/agents/auditagent"
	"github.com/marionette/mco/internal/agents/chefagent"
	"github.com/marionette/mco/internal/agents/jobagent"
	"github.com/marionette/mco/internal/agents/packageagent"
	"github.com/marionette/mco/internal/agents/puppetagent"
	"github.com/marionette/mco/internal/agents/rpcutil"
	"github.com/marionette/mco/internal/agents/serviceagent"
)

// builtinDDLs are the DDLs compiled into the binary.
var builtinDDLs = map[string]func() (*ddl.Agent, error){
	"rpcutil": rpcutil.DDL,
	"package": packageagent.DDL,
	"service": serviceagent.DDL,
	"audit":   auditagent.DDL,
	"puppet":  puppetagent.DDL,
	"chef":    chefagent.DDL,
	"job":     jobagent.DDL,
}

// findDDL locates an agent's DDL: a path to a .json file, an agent in one of
// the libdirs (<libdir>/agent/<name>.json or Choria's
// <libdir>/mcollective/agent/<name>.json, see ddl.AgentDirs), or a built-in
// agent.
func findDDL(nameOrPath string, libdirs []string) (*ddl.Agent, error) {
	if strings.HasSuffix(nameOrPath, ".json") || strings.ContainsRune(nameOrPath, os.PathSeparator) {
		return ddl.Load(nameOrPath)
	}
	for _, libdir := range libdirs {
		for _, dir := range ddl.AgentDirs(libdir) {
			d, err := ddl.Load(filepath.Join(dir, nameOrPath+".json"))
			if err == nil {
				return d, nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
		}
	}
	if load, ok := builtinDDLs[nameOrPath]; ok {
		return load()
	}
	return nil, fmt.Errorf("no DDL for agent %q (known: %s)", nameOrPath, strings.Join(knownAgents(libdirs), ", "))
}

// knownAgents lists the agents findDDL can resolve.
func knownAgents(libdirs []string) []string {
	seen := map[string]bool{}
	for n := range builtinDDLs {
		seen[n] = true
	}
	for _, libdir := range libdirs {
		for _, dir := range ddl.AgentDirs(libdir) {
			files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
			for _, f := range files {
				if name := strings.TrimSuffix(filepath.Base(f), ".json"); !strings.HasPrefix(name, ".") {
					seen[name] = true
				}
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// warnDDL prints a DDL's load warnings (validators and aggregates this build
// does not ship, see ddl.Parse) once, on stderr, as the node logs them.
func warnDDL(app *App, d *ddl.Agent) {
	for _, w := range d.Warnings {
		fmt.Fprintf(app.Stderr, "mco: warning: %s\n", w)
	}
}
