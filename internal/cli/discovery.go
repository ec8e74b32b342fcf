package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/client"
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
				f.dm = "broadcast"
			}
			d, err := f.discover(cmd.Context(), app, cl, flt)
			if err != nil {
				return err
			}
			if asJSON {
				nodes := d.nodes
				if nodes == nil {
					nodes = []string{}
				}
				return writeJSON(app, map[string]any{"nodes": nodes, "discovery_method": d.method, "discovery_ms": ms(d.duration)})
			}
			for _, n := range d.nodes {
				fmt.Fprintln(app.Stdout, n)
			}
			if f.verbose {
				fmt.Fprintf(app.Stdout, "\nDiscovered %d nodes in %.2f ms (%s)\n", len(d.nodes), ms(d.duration), d.method)
			}
			if len(d.nodes) == 0 {
				return exit(1)
			}
			return nil
		},
	}
	f.register(cmd, false)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON document with the node list")
	return cmd
}

func newFactsCmd(app *App) *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "facts FACT",
		Short: "Report the values of a fact across nodes",
		Long: `Ask every matching node for a fact (dotted paths reach into nested facts) and
print each value with how many nodes have it; -v lists the nodes per value.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
			d, err := f.discover(cmd.Context(), app, cl, flt)
			if err != nil {
				return err
			}
			if len(d.nodes) == 0 {
				fmt.Fprintln(app.Stderr, "No request sent, we did not discover any nodes.")
				return exit(1)
			}
			byValue := map[string][]string{}
			var results []client.Result
			stats, err := cl.Call(cmd.Context(), client.Request{
				Agent: "rpcutil", Action: "get_fact", Data: map[string]any{"fact": fact}, Targets: d.nodes,
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
			if f.json {
				return firstErr(writeJSON(app, map[string]any{"fact": fact, "values": byValue, "stats": makeJSONStats(stats, d, exitCode(stats))}), exit(exitCode(stats)))
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
			return exit(exitCode(stats))
		},
	}
	f.register(cmd, false)
	cmd.Flags().BoolVar(&f.json, "json", false, "print one JSON document")
	return cmd
}

func newInventoryCmd(app *App) *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "inventory NODE",
		Short: "Show a node's agents, facts, classes, collectives and daemon statistics",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.connect(cmd)
			if err != nil {
				return err
			}
			defer cl.Close()
			node := args[0]
			get := func(action string) (client.Result, error) {
				var res *client.Result
				_, err := cl.Call(cmd.Context(), client.Request{Agent: "rpcutil", Action: action, Targets: []string{node}, Timeout: orDefault(f.timeout, 5*time.Second)},
					func(r client.Result) { res = &r })
				if err != nil {
					return client.Result{}, err
				}
				if res == nil {
					return client.Result{}, &ExitError{Code: 3, Err: fmt.Errorf("no response from %s", node)}
				}
				if !res.OK() {
					msg := res.Message
					if res.Err != nil {
						msg = res.Err.Error()
					}
					return client.Result{}, &ExitError{Code: 2, Err: fmt.Errorf("%s: %s", node, msg)}
				}
				return *res, nil
			}
			inv, err := get("inventory")
			if err != nil {
				return err
			}
			st, err := get("daemon_stats")
			if err != nil {
				return err
			}
			if f.json {
				return writeJSON(app, map[string]any{"identity": node, "inventory": inv.Data, "stats": st.Data})
			}
			w := app.Stdout
			fmt.Fprintf(w, "Inventory for %s:\n\n", node)
			fmt.Fprintf(w, "   Server Statistics:\n")
			fmt.Fprintf(w, "      Version: %v\n", inv.Data["version"])
			if start, ok := st.Data["starttime"].(float64); ok {
				fmt.Fprintf(w, "      Start Time: %s\n", time.Unix(int64(start), 0).Format(time.RFC3339))
			}
			for _, k := range []string{"total", "validated", "unvalidated", "filtered", "passed", "denied", "replies", "timeouts", "ttlexpired"} {
				fmt.Fprintf(w, "      %s: %v\n", k, st.Data[k])
			}
			if d, ok := st.Data["dropped"].(map[string]any); ok {
				fmt.Fprintf(w, "      dropped: %s\n", compactMap(d))
			}
			fmt.Fprintf(w, "\n   Agents:\n")
			printWrapped(w, toStrings(inv.Data["agents"]))
			fmt.Fprintf(w, "\n   Data Plugins:\n")
			printWrapped(w, toStrings(inv.Data["data_plugins"]))
			fmt.Fprintf(w, "\n   Configuration Management Classes:\n")
			printWrapped(w, toStrings(inv.Data["classes"]))
			fmt.Fprintf(w, "\n   Collectives:\n      %s (main)\n", inv.Data["main_collective"])
			for _, c := range toStrings(inv.Data["collectives"]) {
				if c != inv.Data["main_collective"] {
					fmt.Fprintf(w, "      %s\n", c)
				}
			}
			fmt.Fprintf(w, "\n   Facts:\n")
			if facts, ok := inv.Data["facts"].(map[string]any); ok {
				keys := make([]string, 0, len(facts))
				for k := range facts {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					fmt.Fprintf(w, "      %s => %s\n", k, displayString(facts[k]))
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&f.json, "json", false, "print one JSON document")
	cmd.Flags().DurationVarP(&f.timeout, "timeout", "t", 0, "how long to wait for the node")
	cmd.Flags().StringVarP(&f.collective, "target", "T", "", "collective")
	return cmd
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func displayString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func compactMap(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

func printWrapped(w interface{ Write([]byte) (int, error) }, items []string) {
	if len(items) == 0 {
		fmt.Fprintln(w, "      (none)")
		return
	}
	line := "     "
	for _, it := range items {
		if len(line)+len(it)+1 > 78 {
			fmt.Fprintln(w, line)
			line = "     "
		}
		line += " " + it
	}
	fmt.Fprintln(w, line)
}
