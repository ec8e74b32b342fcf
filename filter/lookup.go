package filter

import (
	"fmt"
	"strconv"
	"strings"
)

// Lookup resolves a dotted fact path such as "os.release.major" or
// "networking.interfaces.0.ip" in nested facts. It walks maps (keys may
// themselves contain dots: the longest matching key wins) and lists
// (a numeric segment is a 0-based index). Node implementations use it for
// Node.Fact.
func Lookup(facts map[string]any, path string) (any, bool) {
	if path == "" {
		return nil, false
	}
	return lookup(facts, path)
}

func lookup(v any, path string) (any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return lookupKeys(path, func(k string) (any, bool) { x, ok := m[k]; return x, ok })
	case map[any]any:
		// YAML decoders produce map[any]any for maps with non-string keys.
		return lookupKeys(path, func(k string) (any, bool) {
			if x, ok := m[k]; ok {
				return x, true
			}
			for key, x := range m {
				if fmt.Sprint(key) == k {
					return x, true
				}
			}
			return nil, false
		})
	case map[string]string:
		x, ok := m[path]
		return x, ok
	case []any:
		return lookupIndex(path, len(m), func(i int) any { return m[i] })
	case []string:
		return lookupIndex(path, len(m), func(i int) any { return m[i] })
	}
	return nil, false
}

// lookupKeys tries the whole remaining path as a key first, then ever
// shorter dotted prefixes, so flat facts like "os.family" keep working next
// to nested ones.
func lookupKeys(path string, get func(string) (any, bool)) (any, bool) {
	if x, ok := get(path); ok {
		return x, true
	}
	for i := len(path) - 1; i > 0; i-- {
		if path[i] != '.' {
			continue
		}
		if x, ok := get(path[:i]); ok {
			if r, ok := lookup(x, path[i+1:]); ok {
				return r, true
			}
		}
	}
	return nil, false
}

func lookupIndex(path string, n int, get func(int) any) (any, bool) {
	seg, rest, nested := strings.Cut(path, ".")
	i, err := strconv.Atoi(seg)
	if err != nil || i < 0 || i >= n {
		return nil, false
	}
	if !nested {
		return get(i), true
	}
	return lookup(get(i), rest)
}
