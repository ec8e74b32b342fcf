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
			render := newRenderer(app, asJSON, false)
			flt, err := f.buildFilter("")
			if err != nil {
				return &ExitError{Code: 1, Err: err}
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
			code := 0
			if len(d.Nodes) == 0 {
				code = 1 // as plain find: no node matched
			}
			var missing []string
			if d.Broadcast != nil {
				missing = d.Broadcast.Missing
			}
			if render.json() {
				doc := map[string]any{"nodes": orEmpty(d.Nodes), "discovery_method": d.Method, "discovery_ms": ms(d.Duration), "exit_code": code}
				if b := d.Broadcast; b != nil {
					doc["discovery_ended"], doc["discovery_expected"], doc["no_response"] = b.Ended, b.Expected, orEmpty(missing)
				}
				return firstErr(render.result(doc), exit(code))
			}
			for _, n := range d.Nodes {
				fmt.Fprintln(app.Stdout, n)
			}
			if len(missing) > 0 {
				// stderr: stdout stays a list of identities to pipe on.
				fmt.Fprintf(app.Stderr, "\nNo response from:\n\n")
				(&printer{w: app.Stderr}).columns(missing)
			}
			if f.verbose {
				fmt.Fprintf(app.Stdout, "\nDiscovered %d nodes in %.2f ms (%s)\n", len(d.Nodes), ms(d.Duration), d.Method)
			}
			return exit(code)
		},
	}
	f.register(cmd, false)
	cmd.Flags().BoolVarP(&asJSON, "json", "j", false, "print a JSON document with the node list")
	return cmd
}
