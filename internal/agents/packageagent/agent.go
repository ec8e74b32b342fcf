// Package packageagent is the built-in "package" agent: status, install,
// update, uninstall, purge, count, md5 and checkupdates of operating system
// packages, through dpkg/apt on Debian-family nodes and rpm with dnf or yum
// on Red Hat-family nodes.
//
// Its DDL is the Choria package agent's, so existing clients work; names and
// versions are checked both by the DDL and here before any command runs, and
// commands always run with an argv, never through a shell.
package packageagent

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	_ "embed"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/ddl"
	"github.com/marionette/mco/internal/agents/command"
	"github.com/marionette/mco/protocol"
)

//go:embed package.json
var ddlJSON []byte

// DDLJSON returns a copy of the agent's DDL file.
func DDLJSON() []byte { return bytes.Clone(ddlJSON) }

// DDL returns the agent's DDL, freshly parsed.
func DDL() (*ddl.Agent, error) {
	d, err := ddl.Parse("packageagent/package.json", ddlJSON)
	if err != nil {
		return nil, fmt.Errorf("package agent DDL: %w", err)
	}
	return d, nil
}

// Options configures the agent.
type Options struct {
	// Backend is the package manager; nil detects dpkg or rpm on Path.
	Backend Backend
	// Path is the PATH used to find and run the package tools; "" means the
	// daemon's own PATH.
	Path string
	// Logger receives debug logs of the commands run; nil discards them.
	Logger *slog.Logger
}

// New returns the package agent. It fails with an error wrapping
// ErrNoBackend on a node with neither dpkg nor rpm, where the daemon should
// leave the agent inactive.
func New(opts Options) (*agent.Agent, error) {
	d, err := DDL()
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	be := opts.Backend
	if be == nil {
		if be, err = DetectBackend(opts.Path, log); err != nil {
			return nil, fmt.Errorf("package agent: %w", err)
		}
	}
	p := &handlers{backend: be, valid: newValidator()}
	a := agent.New(d)
	a.Register("status", p.status)
	a.Register("install", p.change(install))
	a.Register("update", p.change(update))
	a.Register("uninstall", p.change(uninstall))
	a.Register("purge", p.change(purge))
	a.Register("count", p.count)
	a.Register("md5", p.md5)
	a.Register("checkupdates", p.checkUpdates(""))
	a.Register("apt_checkupdates", p.checkUpdates("dpkg"))
	a.Register("yum_checkupdates", p.checkUpdates("rpm"))
	a.Register("apt_update", p.aptUpdate)
	a.Register("yum_clean", p.yumClean)
	return a, nil
}

// DetectBackend returns the real backend for this node: dpkg/apt when
// dpkg-query and apt-get are on path ("" for the process PATH), otherwise
// rpm with dnf or yum. log may be nil. The data plugins can use it too.
func DetectBackend(path string, log *slog.Logger) (Backend, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := command.Runner{Path: path, Log: log}
	has := func(cmd string) bool { _, err := r.LookPath(cmd); return err == nil }
	switch {
	case has("dpkg-query") && has("apt-get"):
		return dpkgBackend{run: r}, nil
	case has("rpm") && has("dnf"):
		return rpmBackend{run: r, manager: "dnf"}, nil
	case has("rpm") && has("yum"):
		return rpmBackend{run: r, manager: "yum"}, nil
	}
	return nil, ErrNoBackend
}

// handlers holds the agent's actions.
type handlers struct {
	backend Backend
	valid   validator
}

func (h *handlers) status(ctx context.Context, req *agent.Request, rep *agent.Reply) {
	name, ok := h.packageInput(req, rep)
	if !ok {
		return
	}
	pkg, err := h.backend.Status(ctx, name)
	if err != nil {
		rep.Fail("could not get the status of package %s: %v", name, err)
		return
	}
	h.fill(rep, pkg, "")
}

// operation is a change to one package.
type operation int

const (
	install operation = iota
	update
	uninstall
	purge
)

// change runs an operation the way Puppet's ensure does: only when the
// package is not already in the wanted state, so repeating a command across a
// fleet is harmless. Every reply carries the package's resulting status.
func (h *handlers) change(op operation) agent.Handler {
	return func(ctx context.Context, req *agent.Request, rep *agent.Reply) {
		name, ok := h.packageInput(req, rep)
		if !ok {
			return
		}
		version := ""
		if op == install {
			if version, ok = h.versionInput(req, rep); !ok {
				return
			}
		}
		before, err := h.backend.Status(ctx, name)
		if err != nil {
			rep.Fail("could not get the status of package %s: %v", name, err)
			return
		}

		var res Result
		switch {
		case op == install && before.Installed() && (version == "" || version == before.Ensure):
			res.Output = fmt.Sprintf("%s %s is already installed", name, before.Ensure)
		case op == install:
			res, err = h.backend.Install(ctx, name, version)
		case !before.Installed() && (op == update || op == uninstall):
			res.Output = fmt.Sprintf("%s is not installed", name)
		case op == update:
			res, err = h.backend.Update(ctx, name)
		case op == uninstall:
			res, err = h.backend.Uninstall(ctx, name)
		case before.Ensure == Purged:
			res.Output = fmt.Sprintf("%s is already purged", name)
		default:
			res, err = h.backend.Purge(ctx, name)
		}

		after, serr := h.backend.Status(ctx, name)
		if serr != nil {
			after = before
		}
		h.fill(rep, after, res.Output)
		switch {
		case err != nil:
			rep.Fail("%v", err)
		case serr != nil:
			rep.Fail("could not get the status of package %s: %v", name, serr)
		case op == install && !after.Installed():
			rep.Fail("%s is still not installed", name)
		case (op == uninstall || op == purge) && after.Installed():
			rep.Fail("%s is still installed (%s)", name, after.Ensure)
		}
	}
}

func (h *handlers) count(ctx context.Context, _ *agent.Request, rep *agent.Reply) {
	pkgs, err := h.backend.List(ctx)
	if err != nil {
		rep.Fail("could not list installed packages: %v", err)
		return
	}
	set(rep, "output", len(pkgs))
	set(rep, "exitcode", 0)
}

// md5 digests the sorted "name version arch" lines of the installed
// packages, so nodes with identical package sets have the same digest.
func (h *handlers) md5(ctx context.Context, _ *agent.Request, rep *agent.Reply) {
	pkgs, err := h.backend.List(ctx)
	if err != nil {
		rep.Fail("could not list installed packages: %v", err)
		return
	}
	set(rep, "output", packageListMD5(pkgs))
	set(rep, "exitcode", 0)
}

func packageListMD5(pkgs []Package) string {
	lines := make([]string, len(pkgs))
	for i, p := range pkgs {
		lines[i] = p.Name + " " + p.Ensure + " " + p.Arch + "\n"
	}
	slices.Sort(lines)
	sum := md5.Sum([]byte(strings.Join(lines, "")))
	return hex.EncodeToString(sum[:])
}

// checkUpdates serves checkupdates and, with provider set, the
// apt_checkupdates and yum_checkupdates variants that only make sense on a
// node with that package database.
func (h *handlers) checkUpdates(provider string) agent.Handler {
	return func(ctx context.Context, req *agent.Request, rep *agent.Reply) {
		if provider != "" && provider != h.backend.Provider() {
			rep.Fail("%s needs the %s package provider; this node uses %s", req.Action, provider, h.backend.Provider())
			return
		}
		ups, res, err := h.backend.CheckUpdates(ctx)
		if provider == "" {
			set(rep, "package_manager", h.backend.Provider())
		}
		set(rep, "output", tail(res.Output))
		set(rep, "exitcode", res.ExitCode)
		if err != nil {
			rep.Fail("could not check for updates: %v", err)
			return
		}
		if ups == nil {
			ups = []Update{} // an empty list, not null, so clients can count it
		}
		set(rep, "outdated_packages", ups)
	}
}

func (h *handlers) aptUpdate(ctx context.Context, req *agent.Request, rep *agent.Reply) {
	u, ok := h.backend.(CacheUpdater)
	if !ok {
		rep.Fail("apt_update needs the dpkg package provider; this node uses %s", h.backend.Provider())
		return
	}
	res, err := u.UpdateCache(ctx)
	set(rep, "output", tail(res.Output))
	set(rep, "exitcode", res.ExitCode)
	if err != nil {
		rep.Fail("%v", err)
	}
}

// yumCleanModes are the modes yum_clean accepts, as listed in the DDL.
func yumCleanModes() []string {
	return []string{"all", "headers", "packages", "metadata", "dbcache", "plugins", "expire-cache"}
}

func (h *handlers) yumClean(ctx context.Context, req *agent.Request, rep *agent.Reply) {
	c, ok := h.backend.(CacheCleaner)
	if !ok {
		rep.Fail("yum_clean needs the rpm package provider; this node uses %s", h.backend.Provider())
		return
	}
	mode := "all"
	if v, present := req.Data["mode"]; present && v != nil {
		s, isString := v.(string)
		if !isString || !slices.Contains(yumCleanModes(), s) {
			rep.FailWith(protocol.InvalidData, "input \"mode\": must be one of %s", strings.Join(yumCleanModes(), ", "))
			return
		}
		mode = s
	}
	res, err := c.CleanCache(ctx, mode)
	set(rep, "output", tail(res.Output))
	set(rep, "exitcode", res.ExitCode)
	if err != nil {
		rep.Fail("%v", err)
	}
}

// packageInput returns the validated "package" input, or fails the reply
// with status 3 (missing) or 4 (invalid).
func (h *handlers) packageInput(req *agent.Request, rep *agent.Reply) (string, bool) {
	v, present := req.Data["package"]
	if !present || v == nil {
		rep.FailWith(protocol.MissingData, "missing required input \"package\"")
		return "", false
	}
	s, isString := v.(string)
	if !isString {
		rep.FailWith(protocol.InvalidData, "input \"package\": want a string, got %T", v)
		return "", false
	}
	if err := h.valid.check("package", s, h.valid.name); err != nil {
		rep.FailWith(protocol.InvalidData, "%v", err)
		return "", false
	}
	return s, true
}

// versionInput returns the optional "version" input, "" when not given.
func (h *handlers) versionInput(req *agent.Request, rep *agent.Reply) (string, bool) {
	v, present := req.Data["version"]
	if !present || v == nil || v == "" {
		return "", true
	}
	s, isString := v.(string)
	if !isString {
		rep.FailWith(protocol.InvalidData, "input \"version\": want a string, got %T", v)
		return "", false
	}
	if err := h.valid.check("version", s, h.valid.version); err != nil {
		rep.FailWith(protocol.InvalidData, "%v", err)
		return "", false
	}
	return s, true
}

// fill puts a package's status into the reply; fields the backend does not
// know keep their DDL defaults.
func (h *handlers) fill(rep *agent.Reply, p Package, output string) {
	set(rep, "provider", h.backend.Provider())
	for k, v := range map[string]string{
		"name": p.Name, "ensure": p.Ensure, "epoch": p.Epoch, "version": p.Version,
		"release": p.Release, "arch": p.Arch, "output": tail(output),
	} {
		if v != "" {
			set(rep, k, v)
		}
	}
}

func set(rep *agent.Reply, key string, value any) {
	if rep.Data == nil {
		rep.Data = map[string]any{}
	}
	rep.Data[key] = value
}

// StatusQuery returns a function reporting one package, for the "package"
// data plugin: installed, ensure, version, arch and provider. It fails with
// ErrNoBackend on a node without dpkg or rpm.
func StatusQuery(path string, log *slog.Logger) (func(ctx context.Context, name string) (map[string]any, error), error) {
	be, err := DetectBackend(path, log)
	if err != nil {
		return nil, err
	}
	valid := newValidator()
	return func(ctx context.Context, name string) (map[string]any, error) {
		if err := valid.check("package", name, valid.name); err != nil {
			return nil, err
		}
		p, err := be.Status(ctx, name)
		if err != nil {
			return nil, err
		}
		return map[string]any{
			"installed": p.Installed(), "ensure": p.Ensure, "version": p.Version,
			"release": p.Release, "arch": p.Arch, "provider": be.Provider(),
		}, nil
	}, nil
}
