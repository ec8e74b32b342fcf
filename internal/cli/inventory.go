package cli

import (
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/client"
)

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
