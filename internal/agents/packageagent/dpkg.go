package packageagent

import (
	"context"
	"fmt"
	"strings"

	"github.com/marionette/mco/internal/agents/command"
)

// dpkgFormat is one tab-separated line per package; ${Status} is
// "want flag status", e.g. "install ok installed".
const dpkgFormat = "${Package}\t${Version}\t${Architecture}\t${Status}\n"

// aptFrontend keeps apt and debconf from ever waiting for an answer.
const aptFrontend = "DEBIAN_FRONTEND=noninteractive"

// dpkgBackend reads the dpkg database with dpkg-query and changes it with
// apt-get.
type dpkgBackend struct {
	run command.Runner
}

func (b dpkgBackend) Provider() string { return "dpkg" }

func (b dpkgBackend) Status(ctx context.Context, name string) (Package, error) {
	res, err := b.run.Run(ctx, nil, "dpkg-query", "-W", "-f="+dpkgFormat, "--", name)
	if err != nil {
		return Package{}, err
	}
	if res.ExitCode == 1 && strings.Contains(res.Output, "no packages found") {
		return Package{Name: name, Ensure: Purged}, nil
	}
	if res.ExitCode != 0 {
		return Package{}, commandError("dpkg-query "+name, res)
	}
	return parseDpkgStatus(name, res.Stdout)
}

// parseDpkgStatus picks the installed entry from dpkg-query output; with
// multiarch one name can have several entries.
func parseDpkgStatus(name, out string) (Package, error) {
	pkgs, err := parseDpkgList(out)
	if err != nil {
		return Package{}, err
	}
	found := Package{Name: name, Ensure: Purged}
	for _, p := range pkgs {
		if p.Installed() {
			return p, nil
		}
		if p.Ensure == Absent {
			found = p
		}
	}
	return found, nil
}

func (b dpkgBackend) List(ctx context.Context) ([]Package, error) {
	res, err := b.run.Run(ctx, nil, "dpkg-query", "-W", "-f="+dpkgFormat)
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return nil, commandError("dpkg-query", res)
	}
	pkgs, err := parseDpkgList(res.Stdout)
	if err != nil {
		return nil, err
	}
	installed := pkgs[:0]
	for _, p := range pkgs {
		if p.Installed() {
			installed = append(installed, p)
		}
	}
	return installed, nil
}

// parseDpkgList parses dpkgFormat lines. Packages dpkg knows but that are not
// installed get Ensure Absent (configuration files remain) or Purged.
func parseDpkgList(out string) ([]Package, error) {
	var pkgs []Package
	for i, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("dpkg-query output line %d: want 4 tab-separated fields, got %q", i+1, line)
		}
		p := Package{Name: f[0], Arch: f[2]}
		status := strings.Fields(f[3])
		switch {
		case len(status) == 3 && status[2] == "installed":
			p.Ensure = f[1]
			p.Epoch, p.Version, p.Release = splitDebianVersion(f[1])
		case len(status) == 3 && status[2] == "not-installed":
			p.Ensure = Purged
		default: // config-files, half-installed, unpacked...
			p.Ensure = Absent
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// splitDebianVersion splits [epoch:]upstream[-revision].
func splitDebianVersion(v string) (epoch, version, release string) {
	epoch = "0"
	if e, rest, ok := strings.Cut(v, ":"); ok {
		epoch, v = e, rest
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		return epoch, v[:i], v[i+1:]
	}
	return epoch, v, ""
}

func (b dpkgBackend) Install(ctx context.Context, name, version string) (Result, error) {
	target := name
	if version != "" {
		target = name + "=" + version
	}
	return b.apt(ctx, "install", "-o", "Dpkg::Options::=--force-confold", "--", target)
}

func (b dpkgBackend) Update(ctx context.Context, name string) (Result, error) {
	return b.apt(ctx, "install", "--only-upgrade", "-o", "Dpkg::Options::=--force-confold", "--", name)
}

func (b dpkgBackend) Uninstall(ctx context.Context, name string) (Result, error) {
	return b.apt(ctx, "remove", "--", name)
}

func (b dpkgBackend) Purge(ctx context.Context, name string) (Result, error) {
	return b.apt(ctx, "purge", "--", name)
}

func (b dpkgBackend) UpdateCache(ctx context.Context) (Result, error) {
	return b.apt(ctx, "update")
}

// apt runs apt-get non-interactively and turns a non-zero exit into an error
// that still carries the output.
func (b dpkgBackend) apt(ctx context.Context, verb string, args ...string) (Result, error) {
	argv := append([]string{verb, "-y", "-q"}, args...)
	res, err := b.run.Run(ctx, []string{aptFrontend}, "apt-get", argv...)
	if err == nil && res.ExitCode != 0 {
		err = commandError("apt-get "+verb, res)
	}
	return res, err
}

// CheckUpdates simulates a dist-upgrade: it reads the cached package lists
// only, needs no root and changes nothing.
func (b dpkgBackend) CheckUpdates(ctx context.Context) ([]Update, Result, error) {
	res, err := b.run.Run(ctx, []string{aptFrontend}, "apt-get", "-s", "-q", "dist-upgrade")
	if err != nil {
		return nil, res, err
	}
	if res.ExitCode != 0 {
		return nil, res, commandError("apt-get -s dist-upgrade", res)
	}
	return parseAptSimulation(res.Stdout), res, nil
}

// parseAptSimulation reads the "Inst" lines of apt-get -s, such as
//
//	Inst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.14/oldstable [amd64])
//
// where the bracketed old version is missing for newly pulled-in packages.
func parseAptSimulation(out string) []Update {
	var ups []Update
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(line, "Inst ")
		if !ok {
			continue
		}
		name, rest, _ := strings.Cut(rest, " ")
		_, after, ok := strings.Cut(rest, "(")
		if !ok {
			continue
		}
		f := strings.Fields(after)
		u := Update{Package: name}
		if len(f) > 0 {
			u.Version = f[0]
		}
		if len(f) > 1 && !strings.HasPrefix(f[1], "[") {
			u.Repo = f[1]
		}
		ups = append(ups, u)
	}
	return ups
}
