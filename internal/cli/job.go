package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/client"
	"github.com/marionette/mco/ddl"
	"github.com/marionette/mco/internal/jobs"
	"github.com/marionette/mco/protocol"
)

func newJobCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job list|status|results",
		Short: "Detached jobs: list them and collect their results from the nodes that ran them",
		Long: `Detached jobs are runs that outlive the request that started them (Puppet
runs, for one): each node keeps their state, exit code and output in its
job spool, across daemon restarts. A job's id is the id of the request that
started it. These commands ask the nodes selected by the filters (default:
every node with the job agent); requests are signed, authorized and
audited like any other.

Examples:
  mco job list
  mco job status 3f2a...
  mco job results 3f2a... --wait`,
	}
	cmd.AddCommand(newJobListCmd(app), newJobStatusCmd(app), newJobResultsCmd(app))
	return cmd
}

func newJobListCmd(app *App) *cobra.Command {
	f := &clientFlags{}
	var running bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the jobs each node keeps",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			render := f.renderer(app)
			fl, err := openFleet(cmd, app, f, "job")
			if err != nil {
				return err
			}
			defer fl.close()
			data := map[string]any{}
			if running {
				data["running"] = true
			}
			results, stats, err := fl.call(cmd.Context(), "job", "list", data, nil)
			if err != nil {
				return err
			}
			if render.json() {
				out := []map[string]any{}
				for _, r := range results {
					jobs, _ := r.Data["jobs"].([]any)
					for _, j := range jobs {
						if m, ok := j.(map[string]any); ok {
							m["node"] = r.Sender
							out = append(out, m)
						}
					}
				}
				return render.result(out)
			}
			tw := render.table()
			fmt.Fprintln(tw, "NODE\tJOB\tAGENT\tACTION\tSTATE\tEXIT\tSTARTED\tDURATION")
			for _, r := range results {
				if !r.OK() {
					fmt.Fprintf(tw, "%s\t(%s)\t\t\t\t\t\t\n", r.Sender, r.Message)
					continue
				}
				jobs, _ := r.Data["jobs"].([]any)
				for _, j := range jobs {
					m, _ := j.(map[string]any)
					fmt.Fprintf(tw, "%s\t%v\t%v\t%v\t%v\t%s\t%s\t%s\n", r.Sender, m["id"], m["agent"], m["action"], m["state"],
						exitText(m), time.Unix(int64(num(m["started"])), 0).Format(time.DateTime), secs(m["duration"]))
				}
			}
			_ = tw.Flush()
			return noResponse(app, stats)
		},
	}
	f.register(cmd, true)
	cmd.Flags().BoolVar(&running, "running", false, "only jobs still running")
	return cmd
}

func exitText(m map[string]any) string {
	if m["state"] != "finished" {
		return "-"
	}
	return fmt.Sprint(int(num(m["exit_code"])))
}

func secs(v any) string {
	return (time.Duration(num(v)*1000) * time.Millisecond).Round(100 * time.Millisecond).String()
}

func noResponse(app *App, stats *client.Stats) error {
	if len(stats.NoResponse) > 0 {
		fmt.Fprintf(app.Stderr, "No response from %d nodes: %s\n", len(stats.NoResponse), strings.Join(stats.NoResponse, ", "))
		return exit(2)
	}
	return nil
}

// jobCall asks every node for one job and splits the replies: nodes that
// know the job, and how many do not.
func jobCall(ctx context.Context, fl *fleet, action, id string, targets []string) (known []client.Result, unknown int, stats *client.Stats, err error) {
	results, stats, err := fl.call(ctx, "job", action, map[string]any{"id": id}, targets)
	if err != nil {
		return nil, 0, nil, err
	}
	for _, r := range results {
		if !r.OK() && strings.HasPrefix(r.Message, "no job ") {
			unknown++
			continue
		}
		known = append(known, r)
	}
	return known, unknown, stats, nil
}

func newJobStatusCmd(app *App) *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "status ID",
		Short: "The state of one job on the nodes that ran it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkJobID(args[0]); err != nil {
				return err
			}
			fl, err := openFleet(cmd, app, f, "job")
			if err != nil {
				return err
			}
			defer fl.close()
			known, unknown, stats, err := jobCall(cmd.Context(), fl, "status", args[0], nil)
			if err != nil {
				return err
			}
			return printJobs(app, f, args[0], known, unknown, stats, nil)
		},
	}
	f.register(cmd, true)
	return cmd
}

func newJobResultsCmd(app *App) *cobra.Command {
	f := &clientFlags{}
	var wait bool
	var waitFor, interval time.Duration
	cmd := &cobra.Command{
		Use:   "results ID [--wait]",
		Short: "The outcome and output of one job on the nodes that ran it",
		Long: `Show one job's state, exit code and output (its last 64 KiB) on each node
that ran it. With --wait, poll until the job ended on every such node
(at most --wait-timeout). Exit code 0 only when every node's job finished
with exit code 0.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := checkJobID(id); err != nil {
				return err
			}
			fl, err := openFleet(cmd, app, f, "job")
			if err != nil {
				return err
			}
			defer fl.close()
			ctx := cmd.Context()
			if wait {
				if err := waitJob(ctx, app, fl, id, waitFor, interval); err != nil {
					return err
				}
			}
			known, unknown, stats, err := jobCall(ctx, fl, "results", id, nil)
			if err != nil {
				return err
			}
			libdirs := clientLibdirs(cmd)
			return printJobs(app, f, id, known, unknown, stats, func(agent, action string) *ddl.Action {
				if d, err := findDDL(agent, libdirs); err == nil {
					return d.Action(action)
				}
				return nil
			})
		},
	}
	f.register(cmd, true)
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the job ended on every node that runs it")
	cmd.Flags().DurationVar(&waitFor, "wait-timeout", 30*time.Minute, "longest wait with --wait")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "how often --wait polls")
	return cmd
}

// waitJob polls the job's status until no node reports it running.
func waitJob(ctx context.Context, app *App, fl *fleet, id string, limit, interval time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		known, _, _, err := jobCall(ctx, fl, "status", id, nil)
		if err != nil {
			return err
		}
		running := 0
		for _, r := range known {
			if r.Data["running"] == true {
				running++
			}
		}
		if running == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(app.Stderr, "job %s still running on %d nodes after %s\n", id, running, limit)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// checkJobID refuses an id no job can have, before anything is sent
// (discovery included: with no node found, the bad id would go unmentioned).
func checkJobID(id string) error {
	if !jobs.ValidID(id) {
		return &ExitError{Code: 1, Err: fmt.Errorf("%q is not a job id: a job id is the id of the request that started it, 1 to 64 letters, digits, '_' or '-' (mco job list shows them)", id)}
	}
	return nil
}

// detachedReply is the action's own reply recorded by a job started with
// mco rpc --async (ok false for other jobs, and while it runs).
func detachedReply(r client.Result) (client.Result, bool) {
	reply, isMap := r.Data["reply"].(map[string]any)
	status, has := r.Data["reply_status"].(float64)
	if !isMap || !has || status < 0 {
		return client.Result{}, false
	}
	msg, _ := r.Data["reply_message"].(string)
	return client.Result{Sender: r.Sender, Status: protocol.StatusCode(status), Message: msg, Data: reply}, true
}

// printJobs prints one job's state on the nodes that know it; with
// outputs (results), its output too, and the reply of an action run with
// mco rpc --async, rendered with that action's DDL (outputs returns nil
// when the client has none).
func printJobs(app *App, f *clientFlags, id string, known []client.Result, unknown int, stats *client.Stats, outputs func(agent, action string) *ddl.Action) error {
	render := f.renderer(app)
	output := outputs != nil
	code := 0
	if len(known) == 0 {
		code = 1
	}
	for _, r := range known {
		if !r.OK() || r.Data["state"] != "finished" || num(r.Data["exit_code"]) != 0 {
			code = 1
		}
		if rep, ok := detachedReply(r); ok && rep.Status != protocol.OK {
			code = 1
		}
	}
	if len(stats.NoResponse) > 0 {
		code = 2
	}
	if render.json() {
		out := struct {
			ID         string      `json:"id"`
			Replies    []jsonReply `json:"replies"`
			Unknown    int         `json:"nodes_without_job"`
			NoResponse []string    `json:"no_response"`
		}{ID: id, Replies: []jsonReply{}, Unknown: unknown, NoResponse: append([]string{}, stats.NoResponse...)}
		for _, r := range known {
			out.Replies = append(out.Replies, toJSONReply(r))
		}
		return firstErr(render.result(out), exit(code))
	}
	w := app.Stdout
	for _, r := range known {
		d := r.Data
		if rep, ok := detachedReply(r); ok && output {
			agent, action := fmt.Sprint(d["agent"]), fmt.Sprint(d["action"])
			state := "finished"
			if d["timed_out"] == true {
				state = "timed out"
			}
			fmt.Fprintf(w, "%s: job %s (%s %s) %s after %s: %s\n", r.Sender, id, agent, action, state, secs(d["duration"]), rep.Status)
			if !rep.OK() {
				fmt.Fprintf(w, "    %s\n", rep.Message)
			}
			lines := rawLines(rep.Data)
			if act := outputs(agent, action); act != nil {
				lines = act.FormatOutputs(rep.Data)
			}
			for _, l := range lines {
				fmt.Fprintf(w, "    %s\n", l)
			}
			if text, _ := d["stderr"].(string); strings.TrimSpace(text) != "" && (f.verbose || !rep.OK()) {
				fmt.Fprintf(w, "  stderr:\n")
				for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
					fmt.Fprintf(w, "    %s\n", line)
				}
			}
			continue
		}
		fmt.Fprintf(w, "%s: job %s (%v %v) %v", r.Sender, id, d["agent"], d["action"], d["state"])
		if d["state"] == "finished" {
			fmt.Fprintf(w, ", exit code %d", int(num(d["exit_code"])))
		}
		fmt.Fprintf(w, ", %s\n", secs(d["duration"]))
		if !r.OK() {
			fmt.Fprintf(w, "    %s\n", r.Message)
		}
		if output {
			for _, stream := range []string{"stdout", "stderr"} {
				if text, _ := d[stream].(string); strings.TrimSpace(text) != "" {
					fmt.Fprintf(w, "  %s:\n", stream)
					for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
						fmt.Fprintf(w, "    %s\n", line)
					}
				}
			}
		}
	}
	if len(known) == 0 {
		fmt.Fprintf(w, "No node knows job %s", id)
	} else {
		fmt.Fprintf(w, "\n%d nodes ran job %s", len(known), id)
	}
	if unknown > 0 {
		fmt.Fprintf(w, "; %d other nodes do not have it", unknown)
	}
	fmt.Fprintln(w)
	if len(stats.NoResponse) > 0 {
		fmt.Fprintf(w, "No response from %d nodes: %s\n", len(stats.NoResponse), strings.Join(stats.NoResponse, ", "))
	}
	return exit(code)
}
