package cli

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/client"
)

func newInventoryCmd(app *App) *cobra.Command {
	f := &clientFlags{}
	var listCollectives bool
	cmd := &cobra.Command{
		Use:   "inventory [NODE]",
		Short: "Show a node's agents, facts, classes, collectives and daemon statistics, or count collectives and agents",
		Long: `With a NODE, show its agents, data plugins, classes, collectives, facts and
daemon counters. Without, ask every node matching the filters and count the
nodes in each collective and hosting each agent, as MCollective's
mco inventory --list-collectives did (--list-collectives: collectives only).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			render := f.renderer(app)
			if len(args) == 0 {
				return collectiveInventory(cmd, app, f, listCollectives)
			}
			if listCollectives || f.filtered() || len(f.identity) > 0 {
				return &ExitError{Code: 1, Err: fmt.Errorf("mco inventory %s: filters and --list-collectives apply without a NODE", args[0])}
			}
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
			if render.json() {
				return render.result(map[string]any{"identity": node, "inventory": inv.Data, "stats": st.Data})
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
	f.register(cmd, false)
	cmd.Flags().BoolVarP(&f.json, "json", "j", false, "print one JSON document")
	cmd.Flags().BoolVar(&listCollectives, "list-collectives", false, "without NODE: count the nodes of each collective only")
	return cmd
}

// collectiveInventory counts the discovered nodes per collective and per
// agent, from each node's rpcutil inventory.
func collectiveInventory(cmd *cobra.Command, app *App, f *clientFlags, collectivesOnly bool) error {
	render := f.renderer(app)
	flt, err := f.buildFilter("")
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	ro, err := f.rollout.parse()
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
	if d.Nodes = ro.limitNodes(d.Nodes); len(d.Nodes) == 0 {
		fmt.Fprintln(app.Stderr, "No request sent, we did not discover any nodes.")
		if render.json() {
			return firstErr(render.result(map[string]any{"collectives": map[string]int{}, "nodes": 0, "stats": emptyCallJSON(d).(emptyCall).Stats}), exit(1))
		}
		return exit(1)
	}
	collectives, agents := map[string]int{}, map[string]int{}
	var results []client.Result
	stats, err := cl.Call(cmd.Context(), client.Request{
		Agent: "rpcutil", Action: "inventory", Targets: d.Nodes, Timeout: orDefault(f.timeout, 5*time.Second),
	}, func(r client.Result) {
		results = append(results, r)
		if !r.OK() {
			return
		}
		for _, c := range toStrings(r.Data["collectives"]) {
			collectives[c]++
		}
		for _, a := range toStrings(r.Data["agents"]) {
			agents[a]++
		}
	})
	if err != nil {
		return err
	}
	addMissing(stats, d)
	code := exitCode(stats, d.Method)
	if render.json() {
		out := map[string]any{"collectives": collectives, "nodes": len(stats.Responded), "stats": makeJSONStats(stats, d, code)}
		if !collectivesOnly {
			out["agents"] = agents
		}
		return firstErr(render.result(out), exit(code))
	}
	table := func(title string, counts map[string]int) {
		names := make([]string, 0, len(counts))
		for n := range counts {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(app.Stdout, "   %-30s Nodes\n   %-30s =====\n", title, strings.Repeat("=", len(title)))
		for _, n := range names {
			fmt.Fprintf(app.Stdout, "   %-30s %d\n", n, counts[n])
		}
		fmt.Fprintln(app.Stdout)
	}
	table("Collective", collectives)
	fmt.Fprintf(app.Stdout, "%33s %d\n\n", "Total nodes:", len(stats.Responded))
	if !collectivesOnly {
		table("Agent", agents)
	}
	p := newPrinter(app, nil, "", false)
	p.footer(stats, results)
	return exit(code)
}
