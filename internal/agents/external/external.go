// Package external runs agents written in any language: a Choria-format JSON
// DDL `<libdir>/agent/<name>.json` next to an executable `<libdir>/agent/<name>`
// (or `<libdir>/agent/<name>/<name>-<GOOS>_<GOARCH>` for per-platform builds).
// Choria's and MCollective's plugin layout, `<libdir>/mcollective/agent/`, is
// searched too (after agent/), so an existing plugin tree works as a libdir.
//
// Every action of such an agent is handled by running the executable once per
// request as `<exe> <request_file> <reply_file> <protocol>`, with the
// environment reduced to PATH plus the MCollective and Choria variables naming
// those files, so agents written for either system work unchanged. Before an
// agent is offered it gets Choria's activation request and may decline. See
// run.go for the file formats and loader.go for hot reloading.
//
// The node refuses an executable or DDL that anyone but root and the daemon's
// own user could have changed: a file writable by group or others, or owned
// by another user. It would otherwise run that user's code with the daemon's
// rights (often root).
package external

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/ddl"
)

// Choria's names for the two requests an external agent gets, passed as the
// third argument and in CHORIA_EXTERNAL_PROTOCOL, and the schemas their
// request files name in "$schema".
const (
	Protocol                 = "io.choria.mcorpc.external.v1.rpc_request"
	ProtocolSchema           = "https://choria.io/schemas/mcorpc/external/v1/rpc_request.json"
	ActivationProtocol       = "io.choria.mcorpc.external.v1.activation_request"
	ActivationProtocolSchema = "https://choria.io/schemas/mcorpc/external/v1/activation_request.json"
)

// activationTimeout is how long an agent may take to answer the activation
// request, as in Choria.
const activationTimeout = 2 * time.Second

// defaultPath is used when the daemon itself runs without PATH, so agents can
// still find basic tools.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Options configures discovery and invocation of external agents.
type Options struct {
	// LibDirs are searched in order for an agent/ subdirectory. When two libdirs
	// hold an agent of the same name the first wins.
	LibDirs []string
	// Facts returns the node's current facts, written for each request to the
	// file named by CHORIA_EXTERNAL_FACTS. It is called once per request, so
	// it should return cached facts, not gather them. Nil means no facts ({}).
	Facts func() map[string]any
	// Path is the PATH agents run with. Empty means the daemon's own PATH.
	Path string
	// Logger receives reload errors, DDL warnings and agents' stderr. Nil
	// discards.
	Logger *slog.Logger
	// Config holds each agent's plugin.<agent>.<key> settings from
	// server.conf, by agent name then key. An agent gets its own keys in the
	// file named by CHORIA_EXTERNAL_CONFIG, and through agent.Agent.Config.
	Config map[string]map[string]string
	// Debounce is how long Run waits after the last file event before
	// reloading, so that copying several files causes one reload. Default 250ms.
	Debounce time.Duration
	// Rescan is how often Run re-checks the files even without events, as a
	// safety net for changes inotify cannot see (a libdir created after start,
	// network filesystems). Default 30s.
	Rescan time.Duration
	// Groups, when set, is told the process group of every agent run when it
	// starts and when it ends (reaper.Groups), so a daemon restarted after a
	// crash can kill the runs its predecessor left behind.
	Groups ProcessGroups
	// Only, when set, loads just the agent of that name: a detached job's
	// runner needs one agent, and loading means asking each agent whether
	// to activate, which runs it.
	Only string
}

// ProcessGroups records running agent process groups (their leader's pid).
type ProcessGroups interface {
	Started(pid int)
	Exited(pid int)
}

// withDefaults fills unset options; it is applied once, by NewLoader.
func (o Options) withDefaults() Options {
	if o.Path == "" {
		o.Path = os.Getenv("PATH")
	}
	if o.Path == "" {
		o.Path = defaultPath
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Debounce <= 0 {
		o.Debounce = 250 * time.Millisecond
	}
	if o.Rescan <= 0 {
		o.Rescan = 30 * time.Second
	}
	return o
}

// discover loads every external agent in the libdirs. A broken agent yields an
// error naming its file and is skipped; the others still load. Agents are
// returned sorted by name.
func discover(opts Options) ([]*agent.Agent, []error) {
	var (
		agents []*agent.Agent
		errs   []error
		seen   = map[string]string{} // agent name -> DDL path that won
	)
	for _, dir := range agentDirs(opts.LibDirs) {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a libdir without agents is normal
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("reading external agents: %w", err))
			continue
		}
		for _, e := range entries {
			name, ok := ddlName(e.Name())
			if !ok || e.IsDir() || (opts.Only != "" && name != opts.Only) {
				continue
			}
			ddlPath := filepath.Join(dir, e.Name())
			if first, dup := seen[name]; dup {
				errs = append(errs, fmt.Errorf("%s: agent %q already loaded from %s; ignored", ddlPath, name, first))
				continue
			}
			a, err := loadAgent(dir, name, opts)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			seen[name] = ddlPath
			if a != nil { // nil: the agent declined activation
				agents = append(agents, a)
			}
		}
	}
	sort.Slice(agents, func(i, j int) bool { return agents[i].Name() < agents[j].Name() })
	return agents, errs
}

// agentDirs lists the directories holding agents, in search order: for each
// libdir, agent/ then mcollective/agent/.
func agentDirs(libdirs []string) []string {
	var dirs []string
	for _, libdir := range libdirs {
		dirs = append(dirs, ddl.AgentDirs(libdir)...)
	}
	return dirs
}

// ddlName returns the agent name for a DDL file name. Hidden files are skipped
// because editors create them (emacs lock files end in .json too).
func ddlName(file string) (string, bool) {
	if strings.HasPrefix(file, ".") || !strings.HasSuffix(file, ".json") {
		return "", false
	}
	name := strings.TrimSuffix(file, ".json")
	return name, name != ""
}

// loadAgent parses <dir>/<name>.json, finds its executable, asks it whether
// to activate and registers a handler running it for every action of the
// DDL. It returns nil without error for an agent that declines activation.
func loadAgent(dir, name string, opts Options) (*agent.Agent, error) {
	ddlPath := filepath.Join(dir, name+".json")
	if err := checkTrusted(ddlPath); err != nil {
		return nil, fmt.Errorf("loading external agent: %w", err)
	}
	data, err := os.ReadFile(ddlPath)
	if err != nil {
		return nil, fmt.Errorf("loading external agent: %w", err)
	}
	d, err := ddl.Parse(ddlPath, data)
	if err != nil {
		return nil, fmt.Errorf("loading external agent: %w", err)
	}
	if d.Metadata.Name != name {
		return nil, fmt.Errorf("%s: metadata.name %q does not match the file name %q", ddlPath, d.Metadata.Name, name)
	}
	exe, err := findExecutable(dir, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ddlPath, err)
	}
	// Agents run in a temp dir, so a relative libdir must not leak into the
	// path they are started by.
	if exe, err = filepath.Abs(exe); err != nil {
		return nil, fmt.Errorf("%s: %w", ddlPath, err)
	}
	if err := checkTrusted(exe); err != nil {
		return nil, fmt.Errorf("%s: %w", ddlPath, err)
	}
	for _, w := range d.Warnings {
		opts.Logger.Warn("external agent DDL", "agent", name, "warning", w)
	}
	r := &runner{agent: name, exe: exe, ddl: d, config: opts.Config[name], opts: opts}
	if !r.activate() {
		return nil, nil
	}
	a := agent.New(d)
	a.SetConfig(opts.Config[name])
	for _, act := range d.Actions {
		a.Register(act.Name, r.handle)
	}
	return a, nil
}

// findExecutable returns <dir>/<name> when it is a file, else the per-platform
// <dir>/<name>/<name>-<GOOS>_<GOARCH>. The file must be executable by someone:
// whether the daemon's user may run it is only known when it runs.
func findExecutable(dir, name string) (string, error) {
	exe := filepath.Join(dir, name)
	st, err := os.Stat(exe)
	if err == nil && st.IsDir() {
		exe = filepath.Join(exe, fmt.Sprintf("%s-%s_%s", name, runtime.GOOS, runtime.GOARCH))
		st, err = os.Stat(exe)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("no executable: %s does not exist", exe)
	case err != nil:
		return "", fmt.Errorf("checking executable: %w", err)
	case !st.Mode().IsRegular():
		return "", fmt.Errorf("executable %s is not a regular file", exe)
	case st.Mode().Perm()&0o111 == 0:
		return "", fmt.Errorf("%s is not executable (mode %v)", exe, st.Mode().Perm())
	}
	return exe, nil
}
