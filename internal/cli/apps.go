package cli

import (
	"bufio"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/internal/discovery"
)

// appSpec describes an application: a command that runs one agent's actions
// on a named thing (a package, a service) with a friendlier syntax than rpc.
type appSpec struct {
	agent string // the agent called
	input string // the DDL input naming the thing acted on
	// readOnly are the actions that change nothing on the nodes; every other
	// action asks for confirmation when no filter limits the nodes.
	readOnly []string
}

func newPackageCmd(app *App) *cobra.Command {
	spec := appSpec{
		agent: "package", input: "package",
		readOnly: []string{"status", "count", "md5", "checkupdates", "apt_checkupdates", "yum_checkupdates"},
	}
	return newAppCmd(app, spec, &cobra.Command{
		Use:   "package NAME ACTION [key=value ...]",
		Short: "Manage packages",
		Long: `Run an action of the package agent on the nodes selected by the filters.
NAME and ACTION may come in either order. Actions: status, install, update,
uninstall, purge (with a NAME); count, md5, checkupdates (without).
Changing actions on every node (no filter at all) ask for confirmation
first; --yes skips the question.

Examples:
  mco package openssl status
  mco package update openssl -W role=web
  mco package nginx install version=1.24.0-1 -I web1.example.net
  mco package checkupdates`,
	})
}

func newServiceCmd(app *App) *cobra.Command {
	spec := appSpec{agent: "service", input: "service", readOnly: []string{"status"}}
	return newAppCmd(app, spec, &cobra.Command{
		Use:   "service NAME ACTION",
		Short: "Manage services",
		Long: `Run an action of the service agent (status, start, stop, restart) on the
nodes selected by the filters. NAME and ACTION may come in either order.
start, stop and restart on every node (no filter at all) ask for
confirmation first; --yes skips the question.

Examples:
  mco service nginx status
  mco service restart nginx -W role=web`,
	})
}

// newAppCmd completes cmd into the application described by spec.
func newAppCmd(app *App, spec appSpec, cmd *cobra.Command) *cobra.Command {
	f := &clientFlags{}
	var yes, noResults bool
	cmd.Args = cobra.MinimumNArgs(1)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		call, err := spec.prepare(cmd, app, args)
		if err != nil {
			return &ExitError{Code: 1, Err: err}
		}
		var confirm func(*discovery.Result) error
		if !yes && !slices.Contains(spec.readOnly, call.action) && f.unfiltered() {
			confirm = func(d *discovery.Result) error { return confirmAll(app, call, spec, d) }
		}
		return runCall(cmd, app, f, call, noResults, confirm)
	}
	f.register(cmd, true)
	cmd.Flags().BoolVar(&noResults, "no-results", false, "send fire-and-forget: nodes run the action but do not reply (also --nr)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation before changing every node")
	return cmd
}

// prepare works out the action and the name from the arguments (in either
// order: whichever is an action of the agent's DDL is the action) and
// validates them like rpc does. Extra key=value arguments are passed on.
func (s appSpec) prepare(cmd *cobra.Command, app *App, args []string) (*rpcCall, error) {
	var words, kv []string
	for _, a := range args {
		if strings.Contains(a, "=") {
			kv = append(kv, a)
		} else {
			words = append(words, a)
		}
	}
	d, err := findDDL(s.agent, clientLibdirs(cmd))
	if err != nil {
		return nil, err
	}
	warnDDL(app, d)
	isAction := func(w string) bool { return d.Action(w) != nil }
	var name, action string
	switch {
	case len(words) == 1 && isAction(words[0]):
		action = words[0]
	case len(words) == 2 && isAction(words[1]):
		name, action = words[0], words[1]
	case len(words) == 2 && isAction(words[0]):
		action, name = words[0], words[1]
	case len(words) == 0 || len(words) > 2:
		return nil, fmt.Errorf("expected %s NAME ACTION, got %d words (actions: %s)", s.agent, len(words), strings.Join(d.ActionNames(), ", "))
	default:
		return nil, fmt.Errorf("no action of the %s agent in %q (actions: %s)", s.agent, strings.Join(words, " "), strings.Join(d.ActionNames(), ", "))
	}
	act := d.Action(action)
	_, takesName := act.Input[s.input]
	switch {
	case name != "" && !takesName:
		return nil, fmt.Errorf("%s %s takes no %s name (got %q)", s.agent, action, s.input, name)
	case name == "" && takesName:
		return nil, fmt.Errorf("%s %s needs a %s name: mco %s NAME %s", s.agent, action, s.input, s.agent, action)
	case name != "":
		kv = append([]string{s.input + "=" + name}, kv...)
	}
	return prepareCall(cmd, app, s.agent, action, kv)
}

// unfiltered reports whether no selection flag narrows the nodes, so a call
// would reach every node of the collective.
func (f *clientFlags) unfiltered() bool {
	return len(f.identity)+len(f.fact)+len(f.class)+len(f.agent)+len(f.with)+len(f.compound) == 0 && f.nodes == ""
}

// confirmAll asks before a changing action goes to every discovered node.
// Only broadcast discovery means "all": a node list piped in or read from a
// file is a deliberate selection. Without a terminal there is nobody to ask,
// so the call is refused rather than sent.
func confirmAll(app *App, call *rpcCall, spec appSpec, d *discovery.Result) error {
	if d.Method != discovery.Broadcast {
		return nil
	}
	what := call.action
	if name, ok := call.data[spec.input].(string); ok {
		what += " " + name
	}
	if !app.StdinTTY {
		return &ExitError{Code: 1, Err: fmt.Errorf("refusing to %s on ALL %d nodes: no filter was given and standard input is not a terminal to confirm; add a filter (-I, -F, -C, -W, -S) or pass --yes", what, len(d.Nodes))}
	}
	// The question goes to stderr so that --json output stays one document.
	fmt.Fprintf(app.Stderr, "Do you really want to %s on ALL %d nodes? (y/n) ", what, len(d.Nodes))
	answer, _ := bufio.NewReader(app.Stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return &ExitError{Code: 1, Err: fmt.Errorf("aborted: %s was not sent", what)}
}
