package facts

import (
	"fmt"
	"path/filepath"
	"strings"
)

// SourceCommand returns the command of a named fact source:
//
//   - facter: `facter -j --show-legacy`, Facter's structured facts with the
//     legacy flat ones (operatingsystem, ipaddress...) that old filters use;
//   - ohai: `ohai`, Chef's JSON, flattened to dotted names
//     (chef_packages.chef.version, cpu.total) — see FlattenOhai.
//
// Both run on the command interval and after a Puppet or Chef run ends; a
// failing source keeps its last good facts.
func SourceCommand(name string) ([]string, error) {
	switch strings.TrimSpace(name) {
	case "facter":
		return []string{"facter", "-j", "--show-legacy"}, nil
	case "ohai":
		return []string{"ohai"}, nil
	}
	return nil, fmt.Errorf("unknown fact source %q (facter or ohai)", name)
}

// isFacter reports whether a command source is Facter, whose exit code 1
// with facts printed means "some facts did not resolve".
func isFacter(argv []string) bool {
	return len(argv) > 0 && filepath.Base(argv[0]) == "facter"
}

// isOhai reports whether a command source is Ohai, whose output is
// flattened.
func isOhai(argv []string) bool {
	return len(argv) > 0 && filepath.Base(argv[0]) == "ohai"
}

// FlattenOhai turns Ohai's nested JSON into flat facts with dotted names:
// {"cpu": {"total": 2}} becomes {"cpu.total": 2}. Lists stay values.
// Ohai's attribute tree mixes thousands of deep keys with few that filters
// use; flat names make each one addressable as MCollective users of Ohai
// know them, and keep them apart from Facter's structured facts of the same
// top-level names.
func FlattenOhai(in map[string]any) map[string]any {
	out := make(map[string]any, len(in))
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		m, ok := v.(map[string]any)
		if !ok || len(m) == 0 {
			out[prefix] = v
			return
		}
		for k, e := range m {
			walk(prefix+"."+k, e)
		}
	}
	for k, v := range in {
		walk(k, v)
	}
	return out
}
