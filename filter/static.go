package filter

import (
	"context"
	"fmt"
)

// StaticNode is a Node made of fixed values: a simulated node for tests,
// examples and tools that evaluate a filter against facts they were given
// rather than against a running node.
type StaticNode struct {
	Name       string
	FactValues map[string]any // nested maps and lists, reached by dotted path
	ClassNames []string
	AgentNames []string
	// Results answers data plugin queries, keyed "plugin(query)" as in
	// fstat(/etc/issue); a query not in it fails (and so selects nothing).
	Results map[string]map[string]any
}

// Identity implements Node.
func (n *StaticNode) Identity() string { return n.Name }

// Fact implements Node.
func (n *StaticNode) Fact(path string) (any, bool) { return Lookup(n.FactValues, path) }

// Classes implements Node.
func (n *StaticNode) Classes() []string { return n.ClassNames }

// Agents implements Node.
func (n *StaticNode) Agents() []string { return n.AgentNames }

// Data implements Node. The results are fixed, so there is nothing to
// cancel; a ctx that is already done still fails the call, as on a node
// whose data budget is spent.
func (n *StaticNode) Data(ctx context.Context, plugin, query string) (map[string]any, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s(%s): %w", plugin, query, err)
	}
	if res, ok := n.Results[plugin+"("+query+")"]; ok {
		return res, nil
	}
	return nil, fmt.Errorf("no result for %s(%s)", plugin, query)
}

var _ Node = (*StaticNode)(nil)
