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
	"github.com/marionette/mco/internal/agents/packageagent"
	"github.com/marionette/mco/internal/agents/rpcutil"
	"github.com/marionette/mco/internal/agents/serviceagent"
)

// builtinDDLs are the DDLs compiled into the binary.
var builtinDDLs = map[string]func() (*ddl.Agent, error){
	"rpcutil": rpcutil.DDL,
	"package": packageagent.DDL,
	"service": serviceagent.DDL,
	"audit":   auditagent.DDL,
}

// findDDL locates an agent's DDL: a path to a .json file, an agent in one of
// the libdirs (<libdir>/agent/<name>.json), or a built-in agent.
func findDDL(nameOrPath string, libdirs []string) (*ddl.Agent, error) {
	if strings.HasSuffix(nameOrPath, ".json") || strings.ContainsRune(nameOrPath, os.PathSeparator) {
		return ddl.Load(nameOrPath)
	}
	for _, dir := range libdirs {
		p := filepath.Join(dir, "agent", nameOrPath+".json")
		d, err := ddl.Load(p)
		if err == nil {
			return d, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
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
	for _, dir := range libdirs {
		files, _ := filepath.Glob(filepath.Join(dir, "agent", "*.json"))
		for _, f := range files {
			seen[strings.TrimSuffix(filepath.Base(f), ".json")] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
