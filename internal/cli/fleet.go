package cli

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/client"
	"github.com/marionette/mco/filter"
)

// fleet is a connection and the nodes discovered once, for commands that
// make several calls to the same nodes (mco puppet runall, summary, count;
// mco job results --wait).
type fleet struct {
	cl      *client.Client
	flt     *filter.Filter
	nodes   []string
	timeout time.Duration
}

// openFleet connects and discovers the nodes hosting agentName that the
// selection flags choose. No nodes is an error (exit 1), as for rpc.
func openFleet(cmd *cobra.Command, app *App, f *clientFlags, agentName string) (*fleet, error) {
	discoveryFilter, err := f.buildFilter(agentName)
	if err != nil {
		return nil, &ExitError{Code: 1, Err: err}
	}
	flt, err := f.buildFilter("")
	if err != nil {
		return nil, &ExitError{Code: 1, Err: err}
	}
	cl, err := f.connect(cmd)
	if err != nil {
		return nil, err
	}
	d, err := f.discover(cmd.Context(), app, cl, discoveryFilter)
	if err != nil {
		cl.Close()
		return nil, err
	}
	if len(d.Nodes) == 0 {
		cl.Close()
		fmt.Fprintln(app.Stderr, "No request sent, we did not discover any nodes.")
		return nil, exit(1)
	}
	return &fleet{cl: cl, flt: flt, nodes: d.Nodes, timeout: f.timeout}, nil
}

func (fl *fleet) close() { fl.cl.Close() }

// callOnce discovers the nodes hosting agentName, runs one action on all of
// them and disconnects: the fleet commands that make a single call.
func callOnce(cmd *cobra.Command, app *App, f *clientFlags, agentName, action string) ([]client.Result, *client.Stats, error) {
	fl, err := openFleet(cmd, app, f, agentName)
	if err != nil {
		return nil, nil, err
	}
	defer fl.close()
	return fl.call(cmd.Context(), agentName, action, nil, nil)
}

// call runs an action on targets (nil: every discovered node) and returns
// the replies sorted by sender, with the call's statistics.
func (fl *fleet) call(ctx context.Context, agentName, action string, data map[string]any, targets []string) ([]client.Result, *client.Stats, error) {
	if targets == nil {
		targets = fl.nodes
	}
	timeout := fl.timeout
	if timeout <= 0 {
		timeout = 22 * time.Second // the puppet DDL's 20 s, and a margin
	}
	if data == nil {
		data = map[string]any{}
	}
	var results []client.Result
	stats, err := fl.cl.Call(ctx, client.Request{
		Agent: agentName, Action: action, Data: data, Filter: fl.flt, Targets: targets, Timeout: timeout,
	}, func(r client.Result) { results = append(results, r) })
	if err != nil {
		return nil, nil, err
	}
	sort.SliceStable(results, func(i, j int) bool { return results[i].Sender < results[j].Sender })
	return results, stats, nil
}

// num reads a JSON number from reply data.
func num(v any) float64 {
	switch n := v.(type) {
	case float64:
		return n
	case int:
		return float64(n)
	case int64:
		return float64(n)
	}
	return 0
}
