package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/filter"
	"github.com/marionette/mco/internal/data"
	"github.com/marionette/mco/internal/facts"
)

func newFilterCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "filter",
		Short: "Explain or test filters",
		Long: `Check filter flags (-I -F -C -A -W -S) without contacting any node:

  mco filter explain -F os=Debian -S "apache or nginx"
  mco filter test -F role=web --facts facts.yaml --classes classes.txt`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newFilterExplainCmd(app), newFilterTestCmd(app))
	return cmd
}

func newFilterExplainCmd(app *App) *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "explain [filter flags]",
		Short: "Print the filter built from the flags in words",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			flt, err := f.buildFilter("")
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			fmt.Fprintln(app.Stdout, filter.Explain(flt))
			return nil
		},
	}
	f.registerSelection(cmd)
	return cmd
}

func newFilterTestCmd(app *App) *cobra.Command {
	f := &clientFlags{}
	var factsPath, classesPath, identity string
	var agents []string
	cmd := &cobra.Command{
		Use:   "test [filter flags] --facts FILE [--classes FILE]",
		Short: "Evaluate the filter locally against a facts file",
		Long: `Evaluate the filter against the facts (YAML or JSON) and classes given, as a
node with those facts would, and print "match" (exit 0) or "no match" (exit 1).
A malformed filter or an unreadable file exits 2. Data functions in -S run
here, on this machine: fstat and sysctl look at local files, fact at the
facts file, agent at the --agents list.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flt, err := f.buildFilter("")
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if err := flt.Validate(); err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if factsPath == "" {
				return &ExitError{Code: 2, Err: errors.New("filter test needs --facts FILE (YAML or JSON)")}
			}
			n, err := newLocalNode(identity, factsPath, classesPath, agents)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if flt.Match(cmd.Context(), n) {
				fmt.Fprintln(app.Stdout, "match")
				return nil
			}
			fmt.Fprintln(app.Stdout, "no match")
			return exit(1)
		},
	}
	f.registerSelection(cmd)
	fs := cmd.Flags()
	fs.StringVar(&factsPath, "facts", "", "facts file (YAML or JSON) to evaluate against")
	fs.StringVar(&classesPath, "classes", "", "classes file, one class per line")
	// -I/--identity is the identity filter, so the node's own name has
	// another flag.
	fs.StringVar(&identity, "node", "localhost", "identity of the simulated node")
	fs.StringSliceVar(&agents, "agents", nil, "agents the simulated node hosts, comma separated")
	return cmd
}

// localNode is a filter.Node made of files on this machine, for filter test.
type localNode struct {
	identity string
	facts    map[string]any
	classes  []string
	agents   []string
	plugins  *data.Registry
}

func newLocalNode(identity, factsPath, classesPath string, agents []string) (*localNode, error) {
	fm, err := facts.LoadFile(factsPath)
	if err != nil {
		return nil, err
	}
	n := &localNode{identity: identity, facts: fm, classes: []string{}}
	for _, a := range agents {
		if a = strings.TrimSpace(a); a != "" {
			n.agents = append(n.agents, a)
		}
	}
	if classesPath != "" {
		fh, err := os.Open(classesPath)
		if err != nil {
			return nil, fmt.Errorf("classes file: %w", err)
		}
		defer fh.Close()
		if n.classes, err = facts.ParseClasses(fh); err != nil {
			return nil, fmt.Errorf("%s: %w", classesPath, err)
		}
	}
	n.plugins = data.New(
		data.NewFStat(time.Now),
		data.NewSysctl(""),
		data.NewFact(n.Fact),
		data.NewAgent(func(name string) (map[string]any, bool) {
			if !contains(n.agents, name) {
				return nil, false
			}
			return map[string]any{"name": name}, true
		}),
	)
	return n, nil
}

func (n *localNode) Identity() string             { return n.identity }
func (n *localNode) Fact(path string) (any, bool) { return filter.Lookup(n.facts, path) }
func (n *localNode) Classes() []string            { return n.classes }
func (n *localNode) Agents() []string             { return n.agents }

func (n *localNode) Data(ctx context.Context, plugin, query string) (map[string]any, error) {
	return n.plugins.Query(ctx, plugin, query)
}
