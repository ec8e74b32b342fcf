package cli

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/client"
	"github.com/marionette/mco/internal/discovery"
	"github.com/marionette/mco/protocol"
)

// asyncTimeout is how long mco rpc --async waits for the nodes' replies
// by default: a node replies as soon as the job started, whatever the
// action's own timeout.
const asyncTimeout = 10 * time.Second

// asyncJSON is mco rpc --async --json's document.
type asyncJSON struct {
	JobID      string      `json:"job_id"`
	Started    []string    `json:"started"`
	NotStarted []jsonReply `json:"not_started"`
	NoResponse []string    `json:"no_response"`
	Stats      jsonStats   `json:"stats"`
}

// sendAsync sends an Async request and reports, node by node, whether the
// job started. A reply without a job id — whatever its status — means no
// job runs there, and is reported as such rather than as a result.
func sendAsync(cmd *cobra.Command, app *App, f *clientFlags, cl *client.Client, req client.Request, d *discovery.Result) error {
	render := f.renderer(app)
	req.Async = true
	req.Timeout = f.timeout
	if req.Timeout <= 0 {
		req.Timeout = asyncTimeout
	}
	var results []client.Result
	stats, err := cl.Call(cmd.Context(), req, func(r client.Result) { results = append(results, r) })
	if err != nil && !errors.Is(err, cmd.Context().Err()) {
		return err
	}
	addMissing(stats, d)
	sort.SliceStable(results, func(i, j int) bool { return results[i].Sender < results[j].Sender })
	var started []string
	var notStarted []client.Result
	for _, r := range results {
		if r.OK() && r.JobID == stats.RequestID {
			started = append(started, r.Sender)
			continue
		}
		if r.Err == nil && r.Status == protocol.OK {
			// An OK reply that names no job: whatever answered did not
			// start one, and the action's outcome is not known here.
			r.Status, r.Message = protocol.UnknownError, "replied without starting a job (the node does not run detached jobs)"
		}
		notStarted = append(notStarted, r)
	}
	code := exitCode(stats, d.Method)
	if code == 0 && len(notStarted) > 0 {
		code = 2
	}
	if len(started) == 0 && code == 2 {
		code = 1
	}
	if !render.text() {
		out := asyncJSON{JobID: stats.RequestID, Started: append([]string{}, started...), NotStarted: []jsonReply{},
			NoResponse: append([]string{}, stats.NoResponse...), Stats: makeJSONStats(stats, d, code)}
		for _, r := range notStarted {
			out.NotStarted = append(out.NotStarted, toJSONReply(r))
		}
		return firstErr(render.result(out), exit(code))
	}
	w := app.Stdout
	for _, n := range started {
		fmt.Fprintf(w, "%-40s started job %s\n", n, stats.RequestID)
	}
	for _, r := range notStarted {
		msg := r.Message
		if r.Err != nil {
			msg = r.Err.Error()
		}
		fmt.Fprintf(w, "%-40s not started: %s\n", r.Sender, msg)
	}
	fmt.Fprintf(w, "\nStarted job %s on %d of %d nodes\n", stats.RequestID, len(started), len(d.Nodes))
	if len(stats.NoResponse) > 0 {
		fmt.Fprintf(w, "No response from %d nodes: %s (a node older than detached jobs drops an --async request unrun)\n",
			len(stats.NoResponse), strings.Join(stats.NoResponse, ", "))
	}
	if len(started) > 0 {
		fmt.Fprintf(w, "Collect the results with: mco job results %s --wait\n", stats.RequestID)
	}
	return exit(code)
}
