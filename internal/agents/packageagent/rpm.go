package packageagent

import (
	"context"
	"fmt"
	"strings"

	"github.com/marionette/mco/internal/agents/command"
)

// rpmFormat is one tab-separated line per package. %{EPOCH} prints "(none)"
// when the package has no epoch.
const rpmFormat = "%{NAME}\t%{EPOCH}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\n"

// yumUpdatesAvailable is the exit code with which yum and dnf check-update
// report that updates exist (0 means none, 1 an error).
const yumUpdatesAvailable = 100

// rpmBackend reads the rpm database with rpm and changes it with dnf, or yum
// where dnf is not installed.
type rpmBackend struct {
	run     command.Runner
	manager string // "dnf" or "yum"
}

func (b rpmBackend) Provider() string { return "rpm" }

func (b rpmBackend) Status(ctx context.Context, name string) (Package, error) {
	res, err := b.run.Run(ctx, nil, "rpm", "-q", "--qf", rpmFormat, "--", name)
	if err != nil {
		return Package{}, err
	}
	if res.ExitCode == 1 && strings.Contains(res.Output, "is not installed") {
		return Package{Name: name, Ensure: Absent}, nil
	}
	if res.ExitCode != 0 {
		return Package{}, commandError("rpm -q "+name, res)
	}
	pkgs, err := parseRPMList(res.Stdout)
	if err != nil {
		return Package{}, err
	}
	if len(pkgs) == 0 {
		return Package{Name: name, Ensure: Absent}, nil
	}
	// With multilib one name can be installed for several architectures;
	// the first is as good an answer as rpm -q gives.
	return pkgs[0], nil
}

func (b rpmBackend) List(ctx context.Context) ([]Package, error) {
	res, err := b.run.Run(ctx, nil, "rpm", "-qa", "--qf", rpmFormat)
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return nil, commandError("rpm -qa", res)
	}
	return parseRPMList(res.Stdout)
}

// parseRPMList parses rpmFormat lines. Ensure is [epoch:]version-release,
// the epoch shown only when set, as rpm itself prints an EVR.
func parseRPMList(out string) ([]Package, error) {
	var pkgs []Package
	for i, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			return nil, fmt.Errorf("rpm output line %d: want 5 tab-separated fields, got %q", i+1, line)
		}
		p := Package{Name: f[0], Epoch: f[1], Version: f[2], Release: f[3], Arch: f[4]}
		if p.Epoch == "(none)" {
			p.Epoch = "0"
		}
		p.Ensure = p.Version + "-" + p.Release
		if p.Epoch != "0" {
			p.Ensure = p.Epoch + ":" + p.Ensure
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

func (b rpmBackend) Install(ctx context.Context, name, version string) (Result, error) {
	target := name
	if version != "" {
		target = name + "-" + version
	}
	return b.yum(ctx, "install", "--", target)
}

func (b rpmBackend) Update(ctx context.Context, name string) (Result, error) {
	return b.yum(ctx, "update", "--", name)
}

func (b rpmBackend) Uninstall(ctx context.Context, name string) (Result, error) {
	return b.yum(ctx, "remove", "--", name)
}

// Purge is the same as Uninstall: rpm keeps no configuration of removed
// packages apart from .rpmsave files, which it leaves on purpose.
func (b rpmBackend) Purge(ctx context.Context, name string) (Result, error) {
	return b.Uninstall(ctx, name)
}

func (b rpmBackend) CleanCache(ctx context.Context, mode string) (Result, error) {
	return b.yum(ctx, "clean", mode)
}

// yum runs the manager non-interactively and turns a non-zero exit into an
// error that still carries the output.
func (b rpmBackend) yum(ctx context.Context, verb string, args ...string) (Result, error) {
	argv := append([]string{verb, "-y", "-q"}, args...)
	res, err := b.run.Run(ctx, nil, b.manager, argv...)
	if err == nil && res.ExitCode != 0 {
		err = commandError(b.manager+" "+verb, res)
	}
	return res, err
}

func (b rpmBackend) CheckUpdates(ctx context.Context) ([]Update, Result, error) {
	res, err := b.run.Run(ctx, nil, b.manager, "-q", "check-update")
	if err != nil {
		return nil, res, err
	}
	switch res.ExitCode {
	case 0:
		return nil, res, nil
	case yumUpdatesAvailable:
		return parseYumCheckUpdate(res.Stdout), res, nil
	}
	return nil, res, commandError(b.manager+" check-update", res)
}

// parseYumCheckUpdate reads "name.arch version repo" lines. yum wraps a long
// name onto its own line, so a lone field is joined with the next line; the
// "Obsoleting Packages" section that may follow is not a list of updates.
func parseYumCheckUpdate(out string) []Update {
	var ups []Update
	pending := ""
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "Obsoleting") {
			break
		}
		f := strings.Fields(line)
		if pending != "" {
			f = append([]string{pending}, f...)
			pending = ""
		}
		switch {
		case len(f) == 1 && strings.Contains(f[0], "."):
			pending = f[0]
		case len(f) == 3 && strings.Contains(f[0], "."):
			ups = append(ups, Update{Package: f[0], Version: f[1], Repo: f[2]})
		}
	}
	return ups
}
