package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/ddl"
)

func newPluginCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "Agent documentation",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newPluginDocCmd(app))
	return cmd
}

func newPluginDocCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "doc [AGENT | PATH/TO/agent.json]",
		Short: "Show an agent's documentation from its DDL, or list the known agents",
		Long: `Without an argument, list the agents whose DDL the client knows: the
built-in ones and those in the client configuration's libdir
(<libdir>/agent/NAME.json). With an agent name or a DDL file, show its
actions, inputs, outputs and summaries.

Examples:
  mco plugin doc
  mco plugin doc service
  mco plugin doc ./agent/greeter.json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			libdirs := clientLibdirs(cmd)
			if len(args) == 0 {
				return listAgents(app, libdirs)
			}
			d, err := findDDL(docTarget(args[0]), libdirs)
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			fmt.Fprint(app.Stdout, ddl.Doc(d))
			return nil
		},
	}
}

// docTarget accepts MCollective's "agent/NAME" spelling as well as a name or
// a path; an existing file of that name still wins.
func docTarget(arg string) string {
	name, ok := strings.CutPrefix(arg, "agent/")
	if !ok || strings.HasSuffix(name, ".json") || strings.ContainsRune(name, '/') {
		return arg
	}
	if _, err := os.Stat(arg); err == nil {
		return arg
	}
	return name
}

// listAgents prints every known agent with its description. A DDL that does
// not load is listed with its error and makes the command fail, so a broken
// file in the libdir is noticed.
func listAgents(app *App, libdirs []string) error {
	fmt.Fprintln(app.Stdout, "Agents (mco plugin doc AGENT for details):")
	fmt.Fprintln(app.Stdout)
	tw := tabwriter.NewWriter(app.Stdout, 0, 4, 3, ' ', 0)
	var errs []error
	for _, name := range knownAgents(libdirs) {
		d, err := findDDL(name, libdirs)
		if err != nil {
			errs = append(errs, err)
			fmt.Fprintf(tw, "  %s\t(unusable DDL, see below)\n", name)
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, d.Metadata.Description)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(errs) > 0 {
		return &ExitError{Code: 1, Err: errors.Join(errs...)}
	}
	return nil
}
