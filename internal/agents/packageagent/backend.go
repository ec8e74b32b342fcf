package packageagent

import (
	"context"
	"errors"
	"fmt"
	"regexp"
)

// Ensure values for a package that is not installed. dpkg distinguishes a
// package whose configuration files remain (absent) from one it has no trace
// of (purged), as Puppet's dpkg provider does; rpm only knows absent.
const (
	Absent = "absent"
	Purged = "purged"
)

// Package is a package as a backend reports it.
type Package struct {
	Name    string
	Ensure  string // full installed version, or Absent/Purged
	Epoch   string
	Version string
	Release string
	Arch    string
}

// Installed reports whether the package is installed in any version.
func (p Package) Installed() bool { return p.Ensure != Absent && p.Ensure != Purged && p.Ensure != "" }

// Update is one package for which a newer version is available.
type Update struct {
	Package string `json:"package"`
	Version string `json:"version"`
	Repo    string `json:"repo"`
}

// Backend is a package manager. The real ones run dpkg/apt or rpm/yum/dnf;
// tests use a fake so that nothing is ever installed on the test machine.
// Methods receive names and versions already validated by the agent.
type Backend interface {
	// Provider names the package database: "dpkg" or "rpm".
	Provider() string
	// Status reports one package; a package that is not installed is not an
	// error but a Package with Ensure Absent or Purged.
	Status(ctx context.Context, name string) (Package, error)
	// List returns every installed package.
	List(ctx context.Context) ([]Package, error)
	// Install installs name, at version when version is not "".
	Install(ctx context.Context, name, version string) (Result, error)
	// Update upgrades name to the newest available version.
	Update(ctx context.Context, name string) (Result, error)
	// Uninstall removes name, keeping its configuration where the manager can.
	Uninstall(ctx context.Context, name string) (Result, error)
	// Purge removes name and its configuration.
	Purge(ctx context.Context, name string) (Result, error)
	// CheckUpdates lists the packages that have a newer version available,
	// from the manager's cached metadata.
	CheckUpdates(ctx context.Context) ([]Update, Result, error)
}

// CacheUpdater is implemented by backends whose metadata cache can be
// refreshed (apt-get update); it serves the apt_update action.
type CacheUpdater interface {
	UpdateCache(ctx context.Context) (Result, error)
}

// CacheCleaner is implemented by backends whose cache can be cleaned (yum
// clean MODE); it serves the yum_clean action.
type CacheCleaner interface {
	CleanCache(ctx context.Context, mode string) (Result, error)
}

// ErrNoBackend means neither dpkg nor rpm was found: the agent cannot work on
// this node and should be left inactive.
var ErrNoBackend = errors.New("no supported package manager found (need dpkg-query with apt-get, or rpm with dnf or yum)")

// The same patterns are the "validation" of the DDL inputs (a test keeps them
// in step), so a bad name is refused by the client, by the node's DDL check
// and here. The first character must be alphanumeric so that a name can never
// be taken for a command-line option.
const (
	namePattern    = `^[a-zA-Z0-9][a-zA-Z0-9+._:-]*$`
	versionPattern = `^[a-zA-Z0-9][a-zA-Z0-9+._:~-]*$`
	maxInputLength = 90
)

// validator checks package names and versions.
type validator struct {
	name, version *regexp.Regexp
}

func newValidator() validator {
	return validator{name: regexp.MustCompile(namePattern), version: regexp.MustCompile(versionPattern)}
}

// check returns an error naming the input when value does not match re.
func (v validator) check(input, value string, re *regexp.Regexp) error {
	switch {
	case value == "":
		return fmt.Errorf("input %q: must not be empty", input)
	case len(value) > maxInputLength:
		return fmt.Errorf("input %q: longer than %d characters", input, maxInputLength)
	case !re.MatchString(value):
		return fmt.Errorf("input %q: %q has characters that are not allowed (must match %s)", input, value, re)
	}
	return nil
}
