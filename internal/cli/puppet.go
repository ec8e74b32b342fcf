package cli

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/client"
	"github.com/marionette/mco/internal/agents/puppetagent"
	"github.com/marionette/mco/internal/discovery"
)

func newPuppetCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "puppet status|summary|count|enable|disable|runonce|runall|resource",
		Short: "Manage the Puppet agent across the fleet",
		Long: `Report on and control the Puppet agent of the nodes selected by the filters,
through their puppet agent (active on nodes where Puppet is installed).

Examples:
  mco puppet status
  mco puppet summary --older-than 2h
  mco puppet count -W environment=production
  mco puppet disable -m "kernel upgrade, back at 14:00" -I web1.example.net
  mco puppet enable -I web1.example.net
  mco puppet runonce --noop --tags apache -W role=web --batch 10
  mco puppet runall 5
  mco puppet resource file /etc/motd`,
	}
	cmd.AddCommand(
		newPuppetPassCmd(app, "status", "Show the Puppet agent's state on every node"),
		newPuppetPassCmd(app, "enable", "Enable the Puppet agent (removes Puppet's agent_disabled lock)"),
		newPuppetDisableCmd(app),
		newPuppetRunonceCmd(app),
		newPuppetRunallCmd(app),
		newPuppetCountCmd(app),
		newPuppetSummaryCmd(app),
		newPuppetResourceCmd(app),
	)
	return cmd
}

// newPuppetPassCmd is an action called as it is, with the usual output.
func newPuppetPassCmd(app *App, action, short string) *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:   action,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			call, err := prepareCall(cmd, app, "puppet", action, nil)
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			return runCall(cmd, app, f, call, false, nil)
		},
	}
	f.register(cmd, true)
	return cmd
}

func newPuppetDisableCmd(app *App) *cobra.Command {
	f := &clientFlags{}
	var message string
	cmd := &cobra.Command{
		Use:   "disable [-m MESSAGE]",
		Short: "Disable the Puppet agent with a reason (Puppet's own lock file: puppet agent refuses to run)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var kv []string
			if message != "" {
				kv = append(kv, "message="+message)
			}
			call, err := prepareCall(cmd, app, "puppet", "disable", kv)
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			return runCall(cmd, app, f, call, false, nil)
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVarP(&message, "message", "m", "", "why Puppet is disabled (shown by status and by puppet agent itself)")
	return cmd
}

// runOptions are the runonce flags, as puppet agent names them.
type runOptions struct {
	noop, force, splay, cached  bool
	ignoreSchedules             bool
	tags, skipTags, env, server string
	splaylimit                  int
}

func (o *runOptions) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.BoolVar(&o.noop, "noop", false, "noop run (--noop=false forces a real run where puppet.conf says noop)")
	fs.BoolVar(&o.force, "force", false, "run now, without splay")
	fs.BoolVar(&o.splay, "splay", false, "splay the run (--splay=false: never)")
	fs.IntVar(&o.splaylimit, "splaylimit", 0, "longest splay in seconds")
	fs.StringVar(&o.tags, "tags", "", "only resources with these tags (comma separated)")
	fs.StringVar(&o.skipTags, "skip-tags", "", "skip resources with these tags (comma separated)")
	fs.StringVar(&o.env, "environment", "", "Puppet environment to run in")
	fs.StringVar(&o.server, "server", "", "Puppet server (host or host:port)")
	fs.BoolVar(&o.cached, "use-cached-catalog", false, "apply the cached catalog (--use-cached-catalog=false: never)")
	fs.BoolVar(&o.ignoreSchedules, "ignoreschedules", false, "apply resources whatever their schedule (puppet --ignoreschedules; an input our puppet DDL adds to the published one)")
}

// args turns the flags given (only those) into runonce inputs.
func (o *runOptions) args(cmd *cobra.Command) []string {
	fs := cmd.Flags()
	var kv []string
	add := func(flag, input, value string) {
		if fs.Changed(flag) {
			kv = append(kv, input+"="+value)
		}
	}
	add("noop", "noop", strconv.FormatBool(o.noop))
	add("force", "force", strconv.FormatBool(o.force))
	add("splay", "splay", strconv.FormatBool(o.splay))
	add("splaylimit", "splaylimit", strconv.Itoa(o.splaylimit))
	add("tags", "tags", o.tags)
	add("skip-tags", "skip_tags", o.skipTags)
	add("environment", "environment", o.env)
	add("server", "server", o.server)
	add("use-cached-catalog", "use_cached_catalog", strconv.FormatBool(o.cached))
	add("ignoreschedules", "ignoreschedules", strconv.FormatBool(o.ignoreSchedules))
	return kv
}

func newPuppetRunonceCmd(app *App) *cobra.Command {
	f := &clientFlags{}
	o := &runOptions{}
	var yes bool
	cmd := &cobra.Command{
		Use:   "runonce [run options] [rollout flags]",
		Short: "Start one Puppet run on every node (detached: collect it with mco job results)",
		Long: `Start a Puppet run on the selected nodes. Nodes where Puppet is disabled
refuse with the disable message; nodes already applying refuse with the time
their run started; an idle Puppet daemon is woken rather than duplicated.
Each run is a detached job whose id is the request id: 'mco job results ID
--wait' collects the outcome, even across a restart of the node daemon.
Every rollout flag applies (--batch, --batch-by, --batch-sleep,
--max-failures, --limit). Without a filter, asks for confirmation first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			call, err := prepareCall(cmd, app, "puppet", "runonce", o.args(cmd))
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			var confirm func(*discovery.Result) error
			if !yes && f.unfiltered() {
				confirm = func(d *discovery.Result) error {
					return confirmAll(app, call, appSpec{agent: "puppet"}, d)
				}
			}
			return runCall(cmd, app, f, call, false, confirm)
		},
	}
	f.register(cmd, true)
	o.register(cmd)
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation before running on every node")
	return cmd
}

func newPuppetResourceCmd(app *App) *cobra.Command {
	f := &clientFlags{}
	var env string
	cmd := &cobra.Command{
		Use:   "resource TYPE NAME [property=value ...]",
		Short: "Show or change one Puppet resource through puppet resource (types allowed in each node's server.conf)",
		Long: `Run 'puppet resource TYPE NAME [property=value ...]' on the selected nodes.
Without properties it shows the resource; with them Puppet changes the
resource to match (ensure=present, content=..., mode=0644) and each node
says whether it changed. Property names are lower-case words
(^[a-z][a-z0-9_]*$); values are single-line strings. Nothing goes through a
shell. Nodes refuse unless server.conf allows the type (puppet.resource.allow
/ puppet.resource.deny; off by default), and refuse resources that Puppet's
own catalog manages.

Properties travel as inputs the published puppet DDL does not declare, as
with MCollective's puppet agent; nodes accept them for this action only.

Examples:
  mco puppet resource file /etc/motd
  mco puppet resource file /etc/motd ensure=file 'content=Managed by Puppet' -W role=web
  mco puppet resource notify hello message=hi`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			props := map[string]any{}
			for _, a := range args[2:] {
				k, v, ok := strings.Cut(a, "=")
				if !ok {
					return &ExitError{Code: 1, Err: fmt.Errorf("resource property %q is not property=value", a)}
				}
				if slices.Contains([]string{"type", "name", "environment"}, k) {
					return &ExitError{Code: 1, Err: fmt.Errorf("resource property %q: %s is the resource action's own input (TYPE and NAME are the first two arguments; use --environment)", a, k)}
				}
				if _, dup := props[k]; dup {
					return &ExitError{Code: 1, Err: fmt.Errorf("resource property %s given twice", k)}
				}
				val, err := puppetagent.CheckProperty(args[0], k, v)
				if err != nil {
					return &ExitError{Code: 1, Err: fmt.Errorf("resource property %q: %w", k, err)}
				}
				props[k] = val
			}
			kv := []string{"type=" + args[0], "name=" + args[1]}
			if env != "" {
				kv = append(kv, "environment="+env)
			}
			call, err := prepareCall(cmd, app, "puppet", "resource", kv)
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			// Added after the DDL check: the published DDL does not
			// declare them; each node validates them again.
			for k, v := range props {
				call.data[k] = v
			}
			return runCall(cmd, app, f, call, false, nil)
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&env, "environment", "", "Puppet environment")
	return cmd
}

func newPuppetCountCmd(app *App) *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "count",
		Short: "Count nodes by Puppet agent state (enabled, applying, idling, daemon running)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			render := f.renderer(app)
			results, stats, err := callOnce(cmd, app, f, "puppet", "status")
			if err != nil {
				return err
			}
			c := map[string]int{}
			for _, r := range results {
				if !r.OK() {
					c["failed"]++
					continue
				}
				c["total"]++
				for _, k := range []string{"enabled", "applying", "idling", "daemon_present"} {
					if r.Data[k] == true {
						c[k]++
					}
				}
			}
			c["disabled"] = c["total"] - c["enabled"]
			c["no_daemon"] = c["total"] - c["daemon_present"]
			c["no_response"] = len(stats.NoResponse)
			if render.json() {
				return render.result(c)
			}
			w := app.Stdout
			fmt.Fprintf(w, "Total Puppet nodes: %d\n\n", c["total"])
			fmt.Fprintf(w, "%34s: %d\n", "Nodes currently enabled", c["enabled"])
			fmt.Fprintf(w, "%34s: %d\n\n", "Nodes currently disabled", c["disabled"])
			fmt.Fprintf(w, "%34s: %d\n", "Nodes currently doing puppet runs", c["applying"])
			fmt.Fprintf(w, "%34s: %d\n", "Nodes with daemons started", c["daemon_present"])
			fmt.Fprintf(w, "%34s: %d\n", "Nodes without daemons started", c["no_daemon"])
			fmt.Fprintf(w, "%34s: %d\n", "Daemons started but idling", c["idling"])
			if c["failed"] > 0 || c["no_response"] > 0 {
				fmt.Fprintf(w, "\n%d nodes failed to report, %d did not respond: %s\n", c["failed"], c["no_response"], strings.Join(stats.NoResponse, ", "))
				return exit(2)
			}
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

// puppetSummary is the fleet's tally of last runs (mco puppet summary).
type puppetSummary struct {
	Nodes          int            `json:"nodes"`
	Applied        int            `json:"applied"` // nodes that completed a run
	NeverRan       []string       `json:"never_ran"`
	WithChanges    []string       `json:"changed"`
	WithFailures   []string       `json:"failed"`
	OutOfSync      []string       `json:"out_of_sync"`
	Stale          []string       `json:"stale"`
	StaleAfter     string         `json:"stale_after"`
	Totals         map[string]int `json:"totals"` // resources summed over nodes
	AvgTotalTime   float64        `json:"average_total_time"`
	AvgConfigTime  float64        `json:"average_config_retrieval_time"`
	OldestRunAgo   int64          `json:"oldest_run_seconds_ago"`
	NoResponse     []string       `json:"no_response"`
	FailedToReport []string       `json:"failed_to_report"`
}

func newPuppetSummaryCmd(app *App) *cobra.Command {
	f := &clientFlags{}
	var olderThan time.Duration
	cmd := &cobra.Command{
		Use:   "summary [--older-than DURATION]",
		Short: "Fleet tallies of the last Puppet runs: applied, changed, failed, out of sync, stale",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			render := f.renderer(app)
			results, stats, err := callOnce(cmd, app, f, "puppet", "last_run_summary")
			if err != nil {
				return err
			}
			s := tallyRuns(results, olderThan)
			s.NoResponse = append([]string{}, stats.NoResponse...)
			if render.json() {
				return render.result(s)
			}
			printSummary(app, s)
			if len(s.FailedToReport) > 0 || len(s.NoResponse) > 0 {
				return exit(2)
			}
			return nil
		},
	}
	f.register(cmd, true)
	cmd.Flags().DurationVar(&olderThan, "older-than", time.Hour, "a last run older than this is stale")
	return cmd
}

func tallyRuns(results []client.Result, olderThan time.Duration) *puppetSummary {
	s := &puppetSummary{Totals: map[string]int{}, StaleAfter: olderThan.String(),
		NeverRan: []string{}, WithChanges: []string{}, WithFailures: []string{}, OutOfSync: []string{}, Stale: []string{}, FailedToReport: []string{}}
	var sumTotal, sumConfig float64
	for _, r := range results {
		s.Nodes++
		if !r.OK() {
			if strings.Contains(r.Message, "has not completed a run") {
				s.NeverRan = append(s.NeverRan, r.Sender)
			} else {
				s.FailedToReport = append(s.FailedToReport, r.Sender)
			}
			continue
		}
		d := r.Data
		s.Applied++
		for _, k := range []string{"total_resources", "changed_resources", "failed_resources", "out_of_sync_resources", "corrected_resources"} {
			s.Totals[strings.TrimSuffix(k, "_resources")] += int(num(d[k]))
		}
		if num(d["changed_resources"]) > 0 {
			s.WithChanges = append(s.WithChanges, r.Sender)
		}
		if num(d["failed_resources"]) > 0 {
			s.WithFailures = append(s.WithFailures, r.Sender)
		}
		if num(d["out_of_sync_resources"]) > 0 {
			s.OutOfSync = append(s.OutOfSync, r.Sender)
		}
		ago := int64(num(d["since_lastrun"]))
		if ago > s.OldestRunAgo {
			s.OldestRunAgo = ago
		}
		if time.Duration(ago)*time.Second > olderThan {
			s.Stale = append(s.Stale, r.Sender)
		}
		sumTotal += num(d["total_time"])
		sumConfig += num(d["config_retrieval_time"])
	}
	if s.Applied > 0 {
		s.AvgTotalTime = math.Round(sumTotal/float64(s.Applied)*100) / 100
		s.AvgConfigTime = math.Round(sumConfig/float64(s.Applied)*100) / 100
	}
	return s
}

func printSummary(app *App, s *puppetSummary) {
	w := app.Stdout
	fmt.Fprintf(w, "Summary of the last Puppet run on %d nodes:\n\n", s.Nodes)
	line := func(label string, n int, nodes []string) {
		fmt.Fprintf(w, "%32s: %d", label, n)
		if len(nodes) > 0 && len(nodes) <= 10 {
			fmt.Fprintf(w, "  (%s)", strings.Join(nodes, ", "))
		}
		fmt.Fprintln(w)
	}
	line("Nodes that applied a catalog", s.Applied, nil)
	line("Nodes that never ran", len(s.NeverRan), s.NeverRan)
	line("Nodes with changed resources", len(s.WithChanges), s.WithChanges)
	line("Nodes with failed resources", len(s.WithFailures), s.WithFailures)
	line("Nodes with out of sync resources", len(s.OutOfSync), s.OutOfSync)
	line("Last run older than "+s.StaleAfter, len(s.Stale), s.Stale)
	fmt.Fprintln(w)
	keys := make([]string, 0, len(s.Totals))
	for k := range s.Totals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%32s: %d\n", "Resources "+strings.ReplaceAll(k, "_", " "), s.Totals[k])
	}
	fmt.Fprintf(w, "%32s: %.2f s\n", "Average run time", s.AvgTotalTime)
	fmt.Fprintf(w, "%32s: %.2f s\n", "Average catalog retrieval", s.AvgConfigTime)
	if s.Applied > 0 {
		fmt.Fprintf(w, "%32s: %s ago\n", "Oldest last run", time.Duration(s.OldestRunAgo)*time.Second)
	}
	if len(s.FailedToReport)+len(s.NoResponse) > 0 {
		fmt.Fprintf(w, "\nNo summary from %d nodes: %s\n", len(s.FailedToReport)+len(s.NoResponse), strings.Join(append(append([]string{}, s.FailedToReport...), s.NoResponse...), ", "))
	}
}

func newPuppetRunallCmd(app *App) *cobra.Command {
	f := &clientFlags{}
	o := &runOptions{}
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "runall CONCURRENCY",
		Short: "Run Puppet on every node, keeping at most CONCURRENCY runs applying across the fleet at once",
		Long: `Run Puppet once on every discovered node, starting new runs only while fewer
than CONCURRENCY nodes are applying a catalog — counting runs started by
anything, not only by this command — and polling the nodes' status until
every node has run. Disabled nodes are skipped and reported.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			limit, err := strconv.Atoi(args[0])
			if err != nil || limit < 1 {
				return &ExitError{Code: 1, Err: fmt.Errorf("CONCURRENCY must be a positive number, not %q", args[0])}
			}
			call, err := prepareCall(cmd, app, "puppet", "runonce", o.args(cmd))
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			fl, err := openFleet(cmd, app, f, "puppet")
			if err != nil {
				return err
			}
			defer fl.close()
			return runAll(cmd.Context(), app, fl, limit, call.data, interval)
		},
	}
	f.register(cmd, false)
	o.register(cmd)
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "how often to poll the nodes' status")
	return cmd
}

// runAll is MCollective's concurrency limiter: poll, top up to limit, repeat.
func runAll(ctx context.Context, app *App, fl *fleet, limit int, data map[string]any, interval time.Duration) error {
	pending := append([]string{}, fl.nodes...)
	started := map[string]bool{}
	var failed, skipped []string
	misses := map[string]int{}
	gone := map[string]bool{} // given up: silent three polls running
	total := len(pending)
	for {
		results, _, err := fl.call(ctx, "puppet", "status", nil, nil)
		if err != nil {
			return err
		}
		state := map[string]map[string]any{}
		for _, r := range results {
			if r.OK() {
				state[r.Sender] = r.Data
				misses[r.Sender] = 0
			}
		}
		applying, waiting := 0, 0
		for _, n := range fl.nodes {
			st, ok := state[n]
			switch {
			case gone[n]:
			case !ok:
				// Unknown state counts as applying: never exceed the limit
				// on a guess. A node silent three times running is given up.
				misses[n]++
				applying++
			case st["applying"] == true:
				applying++
				if started[n] {
					waiting++
				}
			}
			if started[n] && !ok && !gone[n] {
				waiting++
			}
		}
		var still []string
		for _, n := range fl.nodes {
			if misses[n] >= 3 && !gone[n] {
				gone[n] = true
				if started[n] {
					fmt.Fprintf(app.Stdout, "%s %s: no status reply three times; its run's outcome is unknown\n", stamp(), n)
				}
			}
		}
		for _, n := range pending {
			if gone[n] {
				fmt.Fprintf(app.Stdout, "%s %s: no status reply three times, not run\n", stamp(), n)
				failed = append(failed, n)
				continue
			}
			still = append(still, n)
		}
		pending = still
		if len(pending) == 0 && waiting == 0 {
			break
		}
		for applying < limit && len(pending) > 0 {
			n := pending[0]
			st, known := state[n]
			if !known || st["applying"] == true {
				// Busy or unknown: try it again on a later round.
				pending = append(pending[1:], n)
				if allBusy(pending, state) {
					break
				}
				continue
			}
			pending = pending[1:]
			if st["enabled"] == false {
				fmt.Fprintf(app.Stdout, "%s %s: skipped, Puppet is disabled: %v\n", stamp(), n, st["disable_message"])
				skipped = append(skipped, n)
				continue
			}
			res, _, err := fl.call(ctx, "puppet", "runonce", data, []string{n})
			if err != nil {
				return err
			}
			switch {
			case len(res) == 0:
				fmt.Fprintf(app.Stdout, "%s %s: no reply to runonce\n", stamp(), n)
				failed = append(failed, n)
			case !res[0].OK():
				fmt.Fprintf(app.Stdout, "%s %s: %s\n", stamp(), n, res[0].Message)
				failed = append(failed, n)
			default:
				started[n] = true
				applying++
				fmt.Fprintf(app.Stdout, "%s %s: %v (%d of %d)\n", stamp(), n, res[0].Data["summary"], len(started), total)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
	fmt.Fprintf(app.Stdout, "\nRan Puppet on %d of %d nodes, at most %d at once", len(started), total, limit)
	if len(skipped) > 0 {
		fmt.Fprintf(app.Stdout, "; skipped (disabled): %s", strings.Join(skipped, ", "))
	}
	if len(failed) > 0 {
		fmt.Fprintf(app.Stdout, "; failed to start: %s", strings.Join(failed, ", "))
	}
	fmt.Fprintln(app.Stdout)
	if len(failed) > 0 {
		return exit(1)
	}
	return nil
}

// allBusy reports whether every pending node is applying or unknown.
func allBusy(pending []string, state map[string]map[string]any) bool {
	for _, n := range pending {
		if st, ok := state[n]; ok && st["applying"] != true {
			return false
		}
	}
	return true
}

func stamp() string { return time.Now().Format("15:04:05") }
