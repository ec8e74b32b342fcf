package facts

import (
	"maps"
	"reflect"
	"strconv"
	"strings"
)

// merge returns base overlaid with top: each top-level fact of top replaces
// the one of base whole, as in MCollective. Merging maps deeply would mix
// layers: a facts file's os.release over the built-in one would keep the
// built-in os.release.minor next to the file's major. Neither input is
// modified: published snapshots share sub-maps with the layers they were
// built from, so every map reachable from a snapshot must stay untouched.
func merge(base, top map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(top))
	maps.Copy(out, base)
	maps.Copy(out, top)
	return out
}

// Lookup finds a fact by dotted path: "os.release.major" walks into maps and
// "ipaddresses.0" indexes a list. A top-level key that itself contains dots
// wins over the walk, so flat facts such as "ssh.rsa.key" stay reachable.
// The result is shared with facts and must not be modified.
func Lookup(facts map[string]any, path string) (any, bool) {
	if path == "" {
		return nil, false
	}
	if v, ok := facts[path]; ok {
		return v, true
	}
	var cur any = facts
	for part := range strings.SplitSeq(path, ".") {
		switch x := cur.(type) {
		case map[string]any:
			v, ok := x[part]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			cur = x[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// sameIgnoringVolatile reports whether two fact sets differ only in facts
// that change on every refresh. Without this, uptime alone would make every
// refresh look like a change and registration would re-announce each time.
func sameIgnoringVolatile(a, b map[string]any) bool {
	return reflect.DeepEqual(withoutVolatile(a), withoutVolatile(b))
}

func withoutVolatile(m map[string]any) map[string]any {
	out := maps.Clone(m)
	delete(out, "uptime_seconds")
	if mem, ok := out["memory"].(map[string]any); ok {
		mem = maps.Clone(mem)
		delete(mem, "free_mb")
		out["memory"] = mem
	}
	return out
}
