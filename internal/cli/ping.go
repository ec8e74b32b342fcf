package cli

import (
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/client"
	"github.com/marionette/mco/internal/discovery"
)

func newPingCmd(app *App) *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "ping",
		Short: "Find live nodes and their round-trip times",
		Long: `Ping every node matching the filters and print each with its round-trip time,
then min/max/avg and the count. Ends as soon as replies stop arriving (or when
every exact -I node answered).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			render := f.renderer(app)
			flt, err := f.buildFilter("")
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			cl, err := f.connect(cmd)
			if err != nil {
				return err
			}
			defer cl.Close()
			req := client.Request{Agent: "rpcutil", Action: "ping", Filter: flt, Targets: f.directTargets(), Timeout: f.timeout}
			if req.Timeout == 0 {
				req.Timeout = 5 * time.Second
			}
			ro, err := f.rollout.parse()
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			// A node list from a file, stdin or a program is pinged directly,
			// and so is a --limit pick of the discovered nodes; otherwise the
			// ping itself is the broadcast, and it waits for the nodes that
			// answered before like discovery does.
			method, _, err := f.method(app)
			if err != nil {
				return err
			}
			var d *discovery.Result
			var disc *discovery.Discoverer
			var key string
			switch {
			case method == discovery.Broadcast && ro.limit == nil:
				if disc, err = f.discoverer(app, cl, method); err != nil {
					return err
				}
				key, req.Expect = disc.Expect(cmd.Context(), cl.Collective(), flt)
			case method == discovery.Direct && ro.limit == nil:
			default:
				if d, err = f.discover(cmd.Context(), app, cl, flt); err != nil {
					return err
				}
				if req.Targets = ro.limitNodes(d.Nodes); len(req.Targets) == 0 {
					if render.json() {
						return firstErr(render.result(emptyCallJSON(d)), exit(1))
					}
					return &ExitError{Code: 1, Err: fmt.Errorf("no nodes discovered")}
				}
			}
			var results []client.Result
			stats, err := cl.Call(cmd.Context(), req, func(r client.Result) {
				results = append(results, r)
				if !render.json() && r.Err == nil {
					fmt.Fprintf(app.Stdout, "%-40s time=%.2f ms\n", r.Sender, ms(r.RTT))
				}
			})
			if err != nil {
				return err
			}
			if disc != nil {
				disc.Answered(key, stats.Responded)
				stats.NoResponse = stats.Missing
				if f.verbose {
					fmt.Fprintf(app.Stderr, "Ping ended by: %s; %d of %d expected nodes missing\n", stats.Ended, len(stats.Missing), len(req.Expect))
				}
			}
			code := exitCode(stats, method)
			if render.json() {
				out := struct {
					Replies []jsonReply `json:"replies"`
					Stats   jsonStats   `json:"stats"`
				}{Replies: []jsonReply{}, Stats: makeJSONStats(stats, d, code)}
				if disc != nil {
					out.Stats.DiscoveryEnded, out.Stats.DiscoveryMissing = stats.Ended, stats.NoResponse
					n := len(req.Expect)
					out.Stats.DiscoveryExpected = &n
					if out.Stats.DiscoveryMissing == nil {
						out.Stats.DiscoveryMissing = []string{}
					}
				}
				for _, r := range results {
					out.Replies = append(out.Replies, toJSONReply(r))
				}
				return firstErr(render.result(out), exit(code))
			}
			printPingStats(app, stats, results)
			return exit(code)
		},
	}
	f.register(cmd, false)
	cmd.Flags().BoolVarP(&f.json, "json", "j", false, "print one JSON document")
	return cmd
}

func printPingStats(app *App, s *client.Stats, results []client.Result) {
	var rtts []time.Duration
	for _, r := range results {
		if r.Err != nil {
			fmt.Fprintf(app.Stderr, "warning: untrusted reply from %s: %v\n", r.Sender, r.Err)
			continue
		}
		rtts = append(rtts, r.RTT)
	}
	fmt.Fprintln(app.Stdout)
	fmt.Fprintln(app.Stdout, "---- ping statistics ----")
	if len(rtts) == 0 {
		fmt.Fprintln(app.Stdout, "No responses received")
	} else {
		sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
		var sum time.Duration
		for _, d := range rtts {
			sum += d
		}
		fmt.Fprintf(app.Stdout, "%d replies max: %.2f ms min: %.2f ms avg: %.2f ms\n",
			len(rtts), ms(rtts[len(rtts)-1]), ms(rtts[0]), ms(sum/time.Duration(len(rtts))))
	}
	if len(s.NoResponse) > 0 {
		p := &printer{w: app.Stdout}
		fmt.Fprintf(app.Stdout, "\nNo response from:\n\n")
		p.columns(s.NoResponse)
	}
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
