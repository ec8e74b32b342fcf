// Package config reads the role configuration files (server.conf, client.conf,
// broker.conf). The format is MCollective's: one `key = value` per line, `#`
// comments and blank lines ignored; a file named *.yaml or *.yml is YAML
// instead, where nested maps spell the dotted keys (tls: {ca: ...} is tls.ca)
// and lists stand for comma-separated values. Every key is declared with its default in
// this package; an unknown key, a repeated key or a bad value is an error that
// names the file and line. Relative paths are resolved against the directory
// of the file that names them.
package config

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// key declares one configuration key: its documentation and how to set it.
type key struct {
	doc string
	set func(v string) error
}

// keys is the declaration table of one role's configuration.
type keys map[string]key

// entry is one key = value setting and the line it came from.
type entry struct {
	key, value string
	line       int
}

// parseKV reads MCollective's format: `key = value` lines, # comments.
func parseKV(name string, data []byte) ([]entry, error) {
	var out []entry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(strings.TrimSuffix(sc.Text(), "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: expected 'key = value', got %q", name, n, line)
		}
		out = append(out, entry{strings.TrimSpace(k), strings.TrimSpace(v), n})
	}
	return out, sc.Err()
}

// apply sets every entry through the declarations: an unknown key, a repeated
// key or a bad value is an error naming the file and line.
func (ks keys) apply(name string, entries []entry) error {
	seen := map[string]int{}
	for _, e := range entries {
		decl, ok := ks[e.key]
		if !ok {
			if dyn, found := ks.dynamic(e.key); found {
				decl = dyn
			} else {
				return fmt.Errorf("%s:%d: unknown key %q (known keys: %s)", name, e.line, e.key, strings.Join(ks.names(), ", "))
			}
		}
		if prev, dup := seen[e.key]; dup {
			return fmt.Errorf("%s:%d: key %q already set on line %d", name, e.line, e.key, prev)
		}
		seen[e.key] = e.line
		if err := decl.set(e.value); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", name, e.line, e.key, err)
		}
	}
	return nil
}

// dynamic finds a declaration for keys with a variable suffix, declared as
// "prefix.*" (e.g. collectives.<certname>).
func (ks keys) dynamic(k string) (key, bool) {
	for name, decl := range ks {
		if p, ok := strings.CutSuffix(name, "*"); ok && strings.HasPrefix(k, p) && len(k) > len(p) {
			suffix := k[len(p):]
			return key{doc: decl.doc, set: func(v string) error { return decl.set(suffix + "=" + v) }}, true
		}
	}
	return key{}, false
}

func (ks keys) names() []string {
	return slices.Sorted(maps.Keys(ks))
}

// Doc renders the documented keys, for `mco config keys` and the docs.
func (ks keys) doc() string {
	var b strings.Builder
	for _, k := range ks.names() {
		fmt.Fprintf(&b, "%-34s %s\n", k, ks[k].doc)
	}
	return b.String()
}

func load(path string, ks keys) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	parse := parseKV
	if ext := filepath.Ext(path); ext == ".yaml" || ext == ".yml" {
		parse = parseYAML
	}
	entries, err := parse(path, data)
	if err != nil {
		return err
	}
	return ks.apply(path, entries)
}

// Setters shared by the role declarations.

func str(p *string) func(string) error { return func(v string) error { *p = v; return nil } }

func path(base string, p *string) func(string) error {
	return func(v string) error { *p = resolve(base, v); return nil }
}

func paths(base string, p *[]string) func(string) error {
	return func(v string) error {
		*p = nil
		for _, s := range list(v) {
			*p = append(*p, resolve(base, s))
		}
		return nil
	}
}

func strs(p *[]string) func(string) error {
	return func(v string) error { *p = list(v); return nil }
}

func boolean(p *bool) func(string) error {
	return func(v string) error {
		switch strings.ToLower(v) {
		case "true", "yes", "1", "on":
			*p = true
		case "false", "no", "0", "off":
			*p = false
		default:
			return fmt.Errorf("%q is not a boolean (true/false)", v)
		}
		return nil
	}
}

func duration(p *time.Duration) func(string) error {
	return func(v string) error {
		// Bare numbers are seconds, as in MCollective.
		if n, err := strconv.ParseFloat(v, 64); err == nil {
			if n < 0 {
				return fmt.Errorf("%q: duration must not be negative", v)
			}
			if math.IsNaN(n) || math.IsInf(n, 0) || n > float64(math.MaxInt64/int64(time.Second)) {
				return fmt.Errorf("%q is not a usable number of seconds", v)
			}
			*p = time.Duration(n * float64(time.Second))
		} else if d, err := time.ParseDuration(v); err == nil {
			*p = d
		} else {
			return fmt.Errorf("%q is not a duration (e.g. 5s, 1m or seconds)", v)
		}
		if *p < 0 {
			return fmt.Errorf("%q: duration must not be negative", v)
		}
		return nil
	}
}

func integer(p *int) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a non-negative integer", v)
		}
		*p = n
		return nil
	}
}

func list(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func resolve(base, p string) string {
	if p == "" || filepath.IsAbs(p) || base == "" {
		return p
	}
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[2:])
		}
	}
	return filepath.Join(base, p)
}
