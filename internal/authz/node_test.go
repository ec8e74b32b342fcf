package authz

import (
	"fmt"
	"strconv"
	"strings"
)

// testNode is a filter.Node backed by literal facts, classes and data-plugin
// results, so policy tests need no real node.
type testNode struct {
	id      string
	facts   map[string]any
	classes []string
	agents  []string
	data    map[string]map[string]any // "plugin(query)" → fields
}

func (n *testNode) Identity() string  { return n.id }
func (n *testNode) Classes() []string { return n.classes }
func (n *testNode) Agents() []string  { return n.agents }

// Fact walks a dotted path through nested maps and lists (os.release.major,
// ips.0).
func (n *testNode) Fact(path string) (any, bool) {
	var cur any = n.facts
	for rest, more := path, true; more; {
		var part string
		part, rest, more = strings.Cut(rest, ".")
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[part]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

func (n *testNode) Data(plugin, query string) (map[string]any, error) {
	d, ok := n.data[plugin+"("+query+")"]
	if !ok {
		return nil, fmt.Errorf("no data for %s(%q)", plugin, query)
	}
	return d, nil
}
