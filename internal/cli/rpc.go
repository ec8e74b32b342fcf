package cli

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/client"
	"github.com/marionette/mco/ddl"
	"github.com/marionette/mco/internal/config"
	"github.com/marionette/mco/internal/discovery"
)

func newRPCCmd(app *App) *cobra.Command {
	f := &clientFlags{}
	var noResults, async bool
	var agentName, actionName string
	var extra []string
	cmd := &cobra.Command{
		Use:   "rpc AGENT ACTION [key=value ...]",
		Short: "Run an action of an agent on every matching node",
		Long: `Run AGENT's ACTION on the nodes selected by the filters. Arguments are
key=value pairs, converted and validated by the agent's DDL before sending.
MCollective's spelling works too: --agent AGENT --action ACTION --arg key=value
(then every positional argument is a key=value).

Examples:
  mco rpc rpcutil ping
  mco rpc rpcutil get_fact fact=os.family -W role=web
  mco rpc service status service=nginx -I web1.example.net
  mco rpc --agent rpcutil --action get_fact --arg fact=os.family
  mco rpc package install package=nginx --async    (then: mco job results ID --wait)`,
		Args: func(_ *cobra.Command, args []string) error {
			need := 2
			if agentName != "" {
				need--
			}
			if actionName != "" {
				need--
			}
			if len(args) < need {
				return fmt.Errorf("mco rpc needs an agent and an action: mco rpc AGENT ACTION [key=value ...] or --agent AGENT --action ACTION")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			agent, action := agentName, actionName
			if agent == "" {
				agent, args = args[0], args[1:]
			}
			if action == "" {
				action, args = args[0], args[1:]
			}
			return runRPC(cmd, app, f, agent, action, append(extra, args...), noResults, async)
		},
	}
	f.register(cmd, true)
	acceptMCollectiveNames(cmd, true) // before --agent, which is not -A here
	fs := cmd.Flags()
	fs.BoolVar(&async, "async", false, "run the action as a detached job on each node, outside the daemon's lifetime: the nodes reply at once with the job id; collect the results with mco job results ID --wait")
	fs.BoolVar(&noResults, "no-results", false, "send fire-and-forget: nodes run the action but do not reply (also --nr)")
	fs.StringVar(&f.replyTo, "reply-to", "", "send the replies to another of your own reply subjects (a full subject, or a NAME to use <collective>.reply.<your hash>.NAME) for another process with your certificate to collect; do not wait")
	fs.StringVar(&agentName, "agent", "", "the agent to call, instead of the first argument (MCollective's spelling; the agent filter is -A, --with-agent)")
	fs.StringVar(&actionName, "action", "", "the action to run, instead of the second argument")
	fs.StringArrayVar(&extra, "arg", nil, "an input as key=value; repeat for more (also --argument)")
	return cmd
}

// rpcCall is a fully prepared RPC invocation, shared by rpc, package and service.
type rpcCall struct {
	agent, action string
	data          map[string]any
	ddl           *ddl.Agent
	act           *ddl.Action
	// async runs the action as a detached job (mco rpc --async).
	async bool
}

// prepareCall resolves the DDL and converts and validates the arguments.
func prepareCall(cmd *cobra.Command, app *App, agentName, action string, kv []string) (*rpcCall, error) {
	libdirs := clientLibdirs(cmd)
	c := &rpcCall{agent: agentName, action: action}
	args := map[string]string{}
	for _, a := range kv {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("argument %q is not key=value", a)
		}
		args[k] = v
	}
	d, err := findDDL(agentName, libdirs)
	if err != nil {
		// Without a DDL the request still goes out, with string arguments;
		// the node validates against its own DDL.
		fmt.Fprintf(app.Stderr, "warning: %v; sending arguments unchecked\n", err)
		c.data = map[string]any{}
		for k, v := range args {
			c.data[k] = v
		}
		return c, nil
	}
	warnDDL(app, d)
	c.ddl = d
	c.act = d.Action(action)
	if c.act == nil {
		return nil, fmt.Errorf("agent %s has no action %q (actions: %s)", agentName, action, strings.Join(d.ActionNames(), ", "))
	}
	data, err := c.act.ConvertArgs(args)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", agentName, action, err)
	}
	if c.data, err = c.act.ValidateInputs(data); err != nil {
		return nil, fmt.Errorf("%s %s: %w", agentName, action, err)
	}
	return c, nil
}

// timeout is how long the client waits: the action's own timeout plus a
// margin for the node's "timeout after Ns" reply to arrive.
func (c *rpcCall) timeout(override time.Duration) time.Duration {
	if override > 0 {
		return override
	}
	if c.ddl != nil && c.ddl.Metadata.Timeout > 0 {
		return time.Duration(c.ddl.Metadata.Timeout)*time.Second + 2*time.Second
	}
	return 12 * time.Second
}

// clientLibdirs returns the client configuration's DDL directories. Without
// a usable configuration there are none, and the user is told why: agent
// DDLs silently vanishing would be worse.
func clientLibdirs(cmd *cobra.Command) []string {
	path, err := findClient(cmd)
	if err != nil {
		return nil // no configuration at all: built-in DDLs only
	}
	c, err := config.LoadClient(path)
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: client configuration unusable, agent DDLs from its libdir are not loaded: %v\n", err)
		return nil
	}
	return c.Libdirs
}

func runRPC(cmd *cobra.Command, app *App, f *clientFlags, agentName, action string, kv []string, noResults, async bool) error {
	call, err := prepareCall(cmd, app, agentName, action, kv)
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	call.async = async
	return runCall(cmd, app, f, call, noResults, nil)
}

// runCall discovers the nodes, sends a prepared call and prints the replies.
// confirm, when not nil, runs after discovery and before anything is sent:
// an error from it aborts the call (package and service use it for their
// safety prompt).
func runCall(cmd *cobra.Command, app *App, f *clientFlags, call *rpcCall, noResults bool, confirm func(*discovery.Result) error) error {
	render := f.renderer(app)
	agentName, action := call.agent, call.action
	ro, err := f.rollout.parse()
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	// A rollout waits for each batch's replies; without replies here there
	// is nothing to wait for or to count as failed, so refuse rather than
	// silently send to every node at once.
	switch {
	case f.replyTo != "" && ro.batched():
		return &ExitError{Code: 1, Err: fmt.Errorf("--reply-to cannot be combined with --batch or --batch-by: a rollout needs the replies")}
	case noResults && ro.maxFailures != nil:
		return &ExitError{Code: 1, Err: fmt.Errorf("--max-failures needs replies: it cannot be combined with --no-results")}
	case call.async && (noResults || f.replyTo != ""):
		return &ExitError{Code: 1, Err: fmt.Errorf("--async needs the replies, which carry the job id: it cannot be combined with --no-results or --reply-to")}
	case call.async && ro.batched():
		return &ExitError{Code: 1, Err: fmt.Errorf("--async cannot be combined with --batch or --batch-by: a rollout waits for each batch's results, and a detached job's come later")}
	}
	// Discovery looks only for nodes hosting the agent; the request itself
	// carries just the operator's filter, so that a node addressed directly
	// that lacks the agent answers "unknown agent" instead of staying silent
	// (broadcasts reach only the agent's hosts anyway).
	discoveryFilter, err := f.buildFilter(agentName)
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	flt, err := f.buildFilter("")
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	cl, err := f.connect(cmd)
	if err != nil {
		return err
	}
	defer cl.Close()
	d, err := f.discover(cmd.Context(), app, cl, discoveryFilter)
	if err != nil {
		return err
	}
	if len(d.Nodes) == 0 {
		fmt.Fprintln(app.Stderr, "No request sent, we did not discover any nodes.")
		switch {
		case render.json():
			return firstErr(render.result(emptyCallJSON(d)), exit(1))
		case render.jsonl():
			render.record(map[string]any{"stats": emptyCallJSON(d).(emptyCall).Stats})
		}
		return exit(1)
	}
	d.Nodes = ro.limitNodes(d.Nodes)
	if confirm != nil {
		if err := confirm(d); err != nil {
			return err
		}
	}
	req := client.Request{
		Agent: agentName, Action: action, Data: call.data, Filter: flt, Targets: d.Nodes,
		Timeout: call.timeout(f.timeout), NoReplies: noResults, ReplyTo: f.replyTo,
	}
	if f.replyTo != "" && !strings.Contains(f.replyTo, ".") {
		req.ReplyTo = cl.ReplyPrefix(cl.Collective()) + "." + f.replyTo
	}
	if req.ReplyTo != "" || noResults {
		return sendDetached(cmd, app, f, ro, cl, req, d)
	}
	if call.async {
		return sendAsync(cmd, app, f, cl, req, d)
	}
	bar := newProgress(app, f, len(d.Nodes))
	var results []client.Result
	stats, bs, err := ro.send(cmd.Context(), app, f, cl, req, func(r client.Result) {
		results = append(results, r)
		bar.inc()
		if render.jsonl() {
			render.record(toJSONReply(r))
		}
	})
	bar.done()
	if err != nil && !errors.Is(err, cmd.Context().Err()) {
		return err
	}
	addMissing(stats, d)
	sort.SliceStable(results, func(i, j int) bool { return results[i].Sender < results[j].Sender })
	code := rolloutExitCode(exitCode(stats, d.Method), bs)
	switch {
	case render.json():
		out := struct {
			Replies    []jsonReply   `json:"replies"`
			Summaries  []ddl.Summary `json:"summaries"`
			Skipped    []string      `json:"skipped_summaries,omitempty"` // aggregates the DDL names but this build lacks
			Stats      jsonStats     `json:"stats"`
			NoResponse []string      `json:"no_response"`
			*jsonRollout
		}{jsonRollout: makeJSONRollout(bs), Replies: []jsonReply{}, Summaries: []ddl.Summary{}, Stats: makeJSONStats(stats, d, code), NoResponse: makeJSONStats(stats, d, code).NoResponse}
		for _, r := range results {
			out.Replies = append(out.Replies, toJSONReply(r))
		}
		if call.act != nil {
			out.Summaries = append(out.Summaries, call.act.Summarize(okData(results))...)
			out.Skipped = call.act.Skipped()
		}
		return firstErr(render.result(out), exit(code))
	case render.jsonl():
		line := map[string]any{"stats": makeJSONStats(stats, d, code)}
		if bs != nil {
			line["rollout"] = makeJSONRollout(bs)
		}
		render.record(line)
		return exit(code)
	}
	p := newPrinter(app, call.act, f.display, f.verbose)
	for _, r := range results {
		p.reply(r)
	}
	p.summaries(results)
	p.footer(stats, results)
	if bs != nil {
		p.rolloutReport(bs)
	}
	if f.verbose {
		fmt.Fprintf(app.Stdout, "\nDiscovery: %s found %d nodes in %.2f ms; request id %s\n", d.Method, len(d.Nodes), ms(d.Duration), stats.RequestID)
	}
	return exit(code)
}

func okData(results []client.Result) []map[string]any {
	var out []map[string]any
	for _, r := range results {
		if r.OK() {
			out = append(out, r.Data)
		}
	}
	return out
}

// addMissing counts the nodes broadcast discovery expected but never heard
// from as addressed and silent: they are listed under "No response from" and
// make the exit code say so, instead of vanishing from the report.
func addMissing(stats *client.Stats, d *discovery.Result) {
	if stats == nil || d == nil || d.Broadcast == nil || len(d.Broadcast.Missing) == 0 {
		return
	}
	for _, n := range d.Broadcast.Missing {
		if !slices.Contains(stats.Expected, n) {
			stats.Expected = append(stats.Expected, n)
			stats.NoResponse = append(stats.NoResponse, n)
		}
	}
	slices.Sort(stats.Expected)
	slices.Sort(stats.NoResponse)
}

// sendDetached sends a request whose replies this process does not wait for
// (--no-results, --reply-to) and says what was sent: as text, or as one
// --json document.
func sendDetached(cmd *cobra.Command, app *App, f *clientFlags, ro *rollout, cl *client.Client, req client.Request, d *discovery.Result) error {
	render := f.renderer(app)
	out := sentJSON{Sent: []sentRequest{}, ReplyTo: req.ReplyTo, NoReplies: req.NoReplies, Discovered: len(d.Nodes), Method: d.Method}
	if req.ReplyTo != "" {
		stats, err := cl.Call(cmd.Context(), req, func(client.Result) {})
		if err != nil {
			return err
		}
		out.Sent = append(out.Sent, sentRequest{stats.RequestID, req.Targets})
	} else {
		stats, bs, err := ro.send(cmd.Context(), app, f, cl, req, func(client.Result) {})
		if err != nil {
			return err
		}
		if bs == nil {
			out.Sent = append(out.Sent, sentRequest{stats.RequestID, req.Targets})
		} else {
			for _, b := range bs.Batches {
				out.Sent = append(out.Sent, sentRequest{b.Stats.RequestID, b.Nodes})
			}
		}
	}
	if !render.text() {
		return render.result(out)
	}
	for _, s := range out.Sent {
		if req.ReplyTo != "" {
			fmt.Fprintf(app.Stdout, "Request sent with id: %s to %d nodes; replies go to %s\n", s.RequestID, len(s.Nodes), req.ReplyTo)
		} else {
			fmt.Fprintf(app.Stdout, "Request sent with id: %s to %d nodes (no replies requested)\n", s.RequestID, len(s.Nodes))
		}
	}
	return nil
}
