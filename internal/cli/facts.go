package cli

import (
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/client"
)

func newFactsCmd(app *App) *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "facts FACT",
		Short: "Report the values of a fact across nodes",
		Long: `Ask every matching node for a fact (dotted paths reach into nested facts) and
print each value with how many nodes have it; -v lists the nodes per value.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			render := f.renderer(app)
			fact := args[0]
			flt, err := f.buildFilter("")
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			cl, err := f.connect(cmd)
			if err != nil {
				return err
			}
			defer cl.Close()
			ro, err := f.rollout.parse()
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			d, err := f.discover(cmd.Context(), app, cl, flt)
			if err != nil {
				return err
			}
			d.Nodes = ro.limitNodes(d.Nodes)
			if len(d.Nodes) == 0 {
				fmt.Fprintln(app.Stderr, "No request sent, we did not discover any nodes.")
				if render.json() {
					return firstErr(render.result(map[string]any{"fact": fact, "values": map[string][]string{}, "stats": emptyCallJSON(d).(emptyCall).Stats}), exit(1))
				}
				return exit(1)
			}
			byValue := map[string][]string{}
			var results []client.Result
			stats, err := cl.Call(cmd.Context(), client.Request{
				Agent: "rpcutil", Action: "get_fact", Data: map[string]any{"fact": fact}, Targets: d.Nodes,
				Timeout: orDefault(f.timeout, 5*time.Second),
			}, func(r client.Result) {
				results = append(results, r)
				if !r.OK() {
					return
				}
				v, ok := r.Data["value"]
				key := "(missing)"
				if ok && v != nil {
					key = displayString(v)
				}
				byValue[key] = append(byValue[key], r.Sender)
			})
			if err != nil {
				return err
			}
			addMissing(stats, d)
			if render.json() {
				return firstErr(render.result(map[string]any{"fact": fact, "values": byValue, "stats": makeJSONStats(stats, d, exitCode(stats, d.Method))}), exit(exitCode(stats, d.Method)))
			}
			values := make([]string, 0, len(byValue))
			width := 0
			for v := range byValue {
				values = append(values, v)
				width = max(width, len(v))
			}
			sort.Slice(values, func(i, j int) bool {
				if len(byValue[values[i]]) != len(byValue[values[j]]) {
					return len(byValue[values[i]]) > len(byValue[values[j]])
				}
				return values[i] < values[j]
			})
			fmt.Fprintf(app.Stdout, "Report for fact: %s\n\n", fact)
			for _, v := range values {
				nodes := byValue[v]
				sort.Strings(nodes)
				fmt.Fprintf(app.Stdout, "   %-*s  found %d times\n", max(width, 20), v, len(nodes))
				if f.verbose {
					for _, n := range nodes {
						fmt.Fprintf(app.Stdout, "        %s\n", n)
					}
					fmt.Fprintln(app.Stdout)
				}
			}
			fmt.Fprintln(app.Stdout)
			p := newPrinter(app, nil, "", false)
			p.footer(stats, results)
			return exit(exitCode(stats, d.Method))
		},
	}
	f.register(cmd, false)
	cmd.Flags().BoolVarP(&f.json, "json", "j", false, "print one JSON document")
	return cmd
}
