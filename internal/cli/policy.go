package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/filter"
	"github.com/marionette/mco/internal/authz"
	"github.com/marionette/mco/internal/data"
	"github.com/marionette/mco/internal/facts"
)

func newPolicyCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Check and lint ActionPolicy files",
		Long: `Work with ActionPolicy files (<policy.dir>/<agent>.policy) without a node:

  mco policy check --policy rpcutil.policy --caller cert=alice.mcollective --agent rpcutil --action ping
  mco policy lint /etc/marionette/policy/*.policy`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newPolicyCheckCmd(app), newPolicyLintCmd(app))
	return cmd
}

// policyCheckFlags are the inputs of `mco policy check`.
type policyCheckFlags struct {
	policy, groups, caller, agent, action, facts, classes string
}

func newPolicyCheckCmd(app *App) *cobra.Command {
	var f policyCheckFlags
	cmd := &cobra.Command{
		Use:   "check --policy FILE --caller ID --agent NAME --action NAME",
		Short: "Decide one request against a policy file, as a node would",
		Long: `Evaluate a request against a policy file and print "allow" or "deny" followed
by what decided: the matching line (file:line and its text) or the default.
Exit status: 0 allow, 1 deny, 2 unusable input (missing flag, unreadable file,
bad facts or classes).

A policy file with lines that do not parse denies everything, as on a node:
check prints "deny" and every broken line. Groups come from --groups, or, as
on a node, from the file "groups" next to the policy when it exists. Rules
with facts, classes or compound expressions are evaluated against --facts and
--classes; data functions (fstat, sysctl, fact) run on this machine. Without
--facts and --classes such rules never match.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPolicyCheck(cmd.Context(), app, f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.policy, "policy", "", "policy file to evaluate (required)")
	fs.StringVar(&f.groups, "groups", "", `groups file (default: "groups" next to the policy file, when present)`)
	fs.StringVar(&f.caller, "caller", "", "caller id, e.g. cert=alice.mcollective (required)")
	fs.StringVar(&f.agent, "agent", "", "agent name (required)")
	fs.StringVar(&f.action, "action", "", "action name (required)")
	fs.StringVar(&f.facts, "facts", "", "facts file (YAML or JSON) of the node to simulate")
	fs.StringVar(&f.classes, "classes", "", "classes file of the node to simulate, one class per line")
	return cmd
}

// unusable is an unusable-input error: exit status 2.
func unusable(format string, a ...any) error {
	return &ExitError{Code: 2, Err: fmt.Errorf(format, a...)}
}

func runPolicyCheck(ctx context.Context, app *App, f policyCheckFlags) error {
	for _, req := range []struct{ flag, val string }{
		{"--policy", f.policy}, {"--caller", f.caller}, {"--agent", f.agent}, {"--action", f.action},
	} {
		if strings.TrimSpace(req.val) == "" {
			return unusable("policy check needs %s", req.flag)
		}
	}
	if !strings.Contains(f.caller, "=") {
		return unusable("--caller %q: want a caller id like cert=NAME", f.caller)
	}
	// The same names a node accepts: a node denies anything else outright.
	if !authz.ValidName(f.agent) {
		return unusable("--agent %q: agent names are letters, digits, '_' and '-'", f.agent)
	}
	if !authz.ValidName(f.action) {
		return unusable("--action %q: action names are letters, digits, '_' and '-'", f.action)
	}
	raw, err := os.ReadFile(f.policy)
	if err != nil {
		return unusable("policy file: %w", err)
	}
	groups, groupErrs, err := loadCheckGroups(f)
	if err != nil {
		return err
	}
	node, err := newPolicyNode(f.facts, f.classes)
	if err != nil {
		return err
	}
	if base := filepath.Base(f.policy); base != f.agent+".policy" {
		fmt.Fprintf(app.Stderr, "note: nodes read %s.policy for agent %s; %s applies only as the default policy (policy.enable_default)\n", f.agent, f.agent, base)
	}

	p, errs := authz.ParsePolicy(f.policy, strings.NewReader(string(raw)))
	if len(errs) > 0 {
		fmt.Fprintln(app.Stdout, "deny")
		fmt.Fprintf(app.Stdout, "  %s does not parse, so it denies every request:\n", f.policy)
		for _, e := range errs {
			fmt.Fprintf(app.Stdout, "  %v\n", e)
		}
		return exit(1)
	}
	var n filter.Node
	if node != nil {
		n = node
	}
	d := p.Evaluate(ctx, f.caller, f.action, groups, n)
	verdict := "deny"
	if d.Allowed {
		verdict = "allow"
	}
	fmt.Fprintln(app.Stdout, verdict)
	fmt.Fprintf(app.Stdout, "  %s\n", describeDecision(d))
	if !d.Allowed && len(groupErrs) > 0 {
		fmt.Fprintf(app.Stdout, "  the groups file does not parse; policies naming groups deny every request:\n")
		for _, e := range groupErrs {
			fmt.Fprintf(app.Stdout, "  %v\n", e)
		}
	}
	if !d.Allowed {
		return exit(1)
	}
	return nil
}

// describeDecision says what decided, in the words an operator looks for:
// the file:line and text of a rule, or which default applied.
func describeDecision(d authz.Decision) string {
	switch {
	case d.Reason == authz.ReasonMatchedRule:
		return fmt.Sprintf("decided by %s:%d: %s", d.File, d.Line, d.Rule)
	case d.Reason == authz.ReasonPolicyDefault:
		return fmt.Sprintf("no rule matched; decided by the policy default at %s:%d: %s", d.File, d.Line, d.Rule)
	case d.Reason == authz.ReasonNoDefault:
		return fmt.Sprintf("no rule matched and %s has no \"policy default\" line: denied by default", d.File)
	}
	return d.Reason // e.g. an unknown group: the reason names file and line
}

// loadCheckGroups reads the groups file. A groups file that does not parse is
// used without its groups, as a node does: policies that name a group then
// deny. Its errors are returned so check can show them.
func loadCheckGroups(f policyCheckFlags) (authz.Groups, []error, error) {
	path := f.groups
	if path == "" {
		sibling := filepath.Join(filepath.Dir(f.policy), "groups")
		if _, err := os.Stat(sibling); err != nil {
			return authz.Groups{}, nil, nil
		}
		path = sibling
	}
	fh, err := os.Open(path)
	if err != nil {
		return authz.Groups{}, nil, unusable("groups file: %w", err)
	}
	defer fh.Close()
	g, err := authz.ParseGroups(path, fh)
	if err != nil {
		return authz.Groups{}, splitJoined(err), nil
	}
	return g, nil, nil
}

// splitJoined undoes errors.Join so each line error prints on its own line.
func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// policyNode is the node a policy check simulates: facts and classes from
// files, no agents, and data functions answered on this machine.
type policyNode struct {
	facts   map[string]any
	classes []string
	plugins *data.Registry
}

// newPolicyNode builds the simulated node, or returns nil when neither file
// is given (then rules with conditions never match, as Evaluate documents).
func newPolicyNode(factsPath, classesPath string) (*policyNode, error) {
	if factsPath == "" && classesPath == "" {
		return nil, nil
	}
	n := &policyNode{facts: map[string]any{}, classes: []string{}}
	if factsPath != "" {
		fm, err := facts.LoadFile(factsPath)
		if err != nil {
			return nil, unusable("facts: %w", err)
		}
		n.facts = fm
	}
	if classesPath != "" {
		fh, err := os.Open(classesPath)
		if err != nil {
			return nil, unusable("classes file: %w", err)
		}
		defer fh.Close()
		if n.classes, err = facts.ParseClasses(fh); err != nil {
			return nil, unusable("%s: %w", classesPath, err)
		}
	}
	n.plugins = data.New(data.NewFStat(time.Now), data.NewSysctl(""), data.NewFact(n.Fact))
	return n, nil
}

func (n *policyNode) Identity() string             { return "localhost" }
func (n *policyNode) Fact(path string) (any, bool) { return filter.Lookup(n.facts, path) }
func (n *policyNode) Classes() []string            { return n.classes }
func (n *policyNode) Agents() []string             { return nil }

// Data bounds each data function so a slow file cannot hang the check.
func (n *policyNode) Data(ctx context.Context, plugin, query string) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return n.plugins.Query(ctx, plugin, query)
}

func newPolicyLintCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "lint FILE...",
		Short: "Report every line of policy (and groups) files that does not parse",
		Long: `Parse each file and print "file:line: reason" for every line that does not
parse (such a file denies every request on a node), or "FILE: ok". A file
named "groups" is checked as a groups file. Exit status: 0 all ok, 1 some
line does not parse, 2 a file could not be read.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			code := 0
			for _, path := range args {
				errs, err := lintPolicyFile(path)
				if err != nil {
					fmt.Fprintf(app.Stdout, "%s: %v\n", path, err)
					code = 2
					continue
				}
				for _, e := range errs {
					fmt.Fprintln(app.Stdout, e)
				}
				if len(errs) == 0 {
					fmt.Fprintf(app.Stdout, "%s: ok\n", path)
				} else if code == 0 {
					code = 1
				}
			}
			return exit(code)
		},
	}
}

// lintPolicyFile returns the line errors of one policy or groups file; err is
// set only when the file cannot be read.
func lintPolicyFile(path string) ([]error, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	raw, err := io.ReadAll(fh)
	if err != nil {
		return nil, err
	}
	if filepath.Base(path) == "groups" {
		if _, err := authz.ParseGroups(path, strings.NewReader(string(raw))); err != nil {
			return splitJoined(err), nil
		}
		return nil, nil
	}
	_, errs := authz.ParsePolicy(path, strings.NewReader(string(raw)))
	return errs, nil
}
