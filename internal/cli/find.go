package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/internal/discovery"
)

func newFindCmd(app *App) *cobra.Command {
	f := &clientFlags{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "find",
		Short: "List the identities of nodes matching the filters",
		Long: `Discover nodes and print their identities, one per line, ready to pipe:

  mco find -F role=web | mco rpc rpcutil ping`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flt, err := f.buildFilter("")
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			cl, err := f.connect(cmd)
			if err != nil {
				return err
			}
			defer cl.Close()
			// find asks the nodes even for exact -I values: it reports who is
			// there, not who was named.
			if f.dm == "" && f.nodes == "" && f.directTargets() != nil {
				f.dm = discovery.Broadcast
			}
			ro, err := f.rollout.parse()
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			d, err := f.discover(cmd.Context(), app, cl, flt)
			if err != nil {
				return err
			}
			d.Nodes = ro.limitNodes(d.Nodes)
			if asJSON {
				nodes := d.Nodes
				if nodes == nil {
					nodes = []string{}
				}
				return writeJSON(app, map[string]any{"nodes": nodes, "discovery_method": d.Method, "discovery_ms": ms(d.Duration)})
			}
			for _, n := range d.Nodes {
				fmt.Fprintln(app.Stdout, n)
			}
			if f.verbose {
				fmt.Fprintf(app.Stdout, "\nDiscovered %d nodes in %.2f ms (%s)\n", len(d.Nodes), ms(d.Duration), d.Method)
			}
			if len(d.Nodes) == 0 {
				return exit(1)
			}
			return nil
		},
	}
	f.register(cmd, false)
	cmd.Flags().BoolVarP(&asJSON, "json", "j", false, "print a JSON document with the node list")
	return cmd
}
