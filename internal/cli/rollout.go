package cli

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/client"
)

// rolloutFlags are the batching and limiting flags of rpc, package and
// service, as typed; parse checks them before anything is sent.
type rolloutFlags struct {
	batch, batchBy, maxFailures, limit, limitSeed string
	batchSleep                                    time.Duration
	one                                           bool
}

func (r *rolloutFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&r.batch, "batch", "", "send to N nodes (or N% of them) at a time, each batch its own request")
	durationVar(fs, &r.batchSleep, "batch-sleep", 0, "pause between batches, in seconds or as 500ms")
	fs.StringVar(&r.batchBy, "batch-by", "", "one batch per value of FACT, in sorted value order (nodes without it last)")
	fs.StringVar(&r.maxFailures, "max-failures", "", "stop before the next batch once more than N (or N%) of the nodes sent to failed or did not answer")
	r.registerLimit(cmd)
}

// registerLimit declares --limit, --limit-seed and -1 alone, for commands
// that discover but do not batch (find, ping, facts, inventory).
func (r *rolloutFlags) registerLimit(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&r.limit, "limit", "", "address at most N (or N%) of the discovered nodes, picked at random (also --ln, --limit-nodes)")
	fs.StringVar(&r.limitSeed, "limit-seed", "", "seed for --limit's random pick (the same seed picks the same nodes)")
	fs.BoolVarP(&r.one, "one", "1", false, "address one discovered node at random (--limit 1)")
}

// rollout is the checked form of rolloutFlags.
type rollout struct {
	batch       *client.Amount // nil: no size batching
	batchBy     string
	sleep       time.Duration
	maxFailures *client.Amount
	limit       *client.Amount
	rng         *rand.Rand // nil: an unseeded pick
}

// parse checks the flags; every error names its flag.
func (r *rolloutFlags) parse() (*rollout, error) {
	ro := &rollout{batchBy: r.batchBy, sleep: r.batchSleep}
	amount := func(flag, s string, zeroOK bool) (*client.Amount, error) {
		if s == "" {
			return nil, nil
		}
		a, err := client.ParseAmount(s)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flag, err)
		}
		if !zeroOK && a.IsZero() {
			return nil, fmt.Errorf("--%s %s: must be at least 1 node (or a percentage above 0%%)", flag, s)
		}
		return &a, nil
	}
	var err error
	if ro.batch, err = amount("batch", r.batch, false); err != nil {
		return nil, err
	}
	if ro.maxFailures, err = amount("max-failures", r.maxFailures, true); err != nil {
		return nil, err
	}
	if ro.limit, err = amount("limit", r.limit, false); err != nil {
		return nil, err
	}
	if r.one {
		if ro.limit != nil {
			return nil, fmt.Errorf("-1 is --limit 1: give one or the other")
		}
		ro.limit = &client.Amount{N: 1}
	}
	if r.limitSeed != "" {
		if ro.limit == nil {
			return nil, fmt.Errorf("--limit-seed %s: only meaningful with --limit or -1", r.limitSeed)
		}
		seed, err := strconv.ParseInt(r.limitSeed, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("--limit-seed %q: not an integer", r.limitSeed)
		}
		ro.rng = rand.New(rand.NewPCG(uint64(seed), 0))
	}
	if r.batchBy == "" && ro.batch == nil {
		switch {
		case r.batchSleep != 0:
			return nil, fmt.Errorf("--batch-sleep: only meaningful with --batch or --batch-by")
		case ro.maxFailures != nil:
			return nil, fmt.Errorf("--max-failures: only meaningful with --batch or --batch-by")
		}
	}
	if r.batchSleep < 0 {
		return nil, fmt.Errorf("--batch-sleep %s: must not be negative", r.batchSleep)
	}
	return ro, nil
}

// batched reports whether the call goes out in batches.
func (ro *rollout) batched() bool { return ro.batch != nil || ro.batchBy != "" }

// limitNodes applies --limit / -1 to the discovered nodes.
func (ro *rollout) limitNodes(nodes []string) []string {
	if ro.limit == nil {
		return nodes
	}
	return client.LimitNodes(nodes, *ro.limit, ro.rng)
}

// plan cuts the nodes into batches: per value of the --batch-by fact (asked
// of the nodes themselves), then by --batch size.
func (ro *rollout) plan(ctx context.Context, cl *client.Client, nodes []string, timeout time.Duration) (client.BatchPlan, error) {
	plan := client.BatchPlan{Batches: []client.Batch{{Nodes: nodes}}, Sleep: ro.sleep, MaxFailures: ro.maxFailures}
	if ro.batchBy != "" {
		values, err := cl.FactValues(ctx, "", nodes, ro.batchBy, timeout)
		if err != nil {
			return plan, fmt.Errorf("--batch-by %s: %w", ro.batchBy, err)
		}
		if len(values) == 0 {
			// A misspelt fact would put every node in the "(missing)"
			// batch: one batch of everything, the opposite of a rollout.
			msg := fmt.Sprintf("--batch-by %s: no discovered node has fact %s; nothing was sent", ro.batchBy, ro.batchBy)
			if names, err := cl.FactNames(ctx, "", nodes, timeout); err == nil {
				if near := nearest(ro.batchBy, names); near != "" {
					msg = fmt.Sprintf("--batch-by %s: no discovered node has fact %s; did you mean %s? Nothing was sent", ro.batchBy, ro.batchBy, near)
				}
			}
			return plan, &ExitError{Code: 1, Err: errors.New(msg)}
		}
		plan.Batches = client.GroupByValue(ro.batchBy, nodes, values)
	}
	if ro.batch != nil {
		plan.Batches = client.SplitBatches(plan.Batches, ro.batch.Of(len(nodes)))
	}
	return plan, nil
}

// nearest is the name closest to want by edit distance, "" when none is
// close enough to be a plausible misspelling.
func nearest(want string, names []string) string {
	best, bestD := "", len(want)/3+2
	for _, n := range names {
		if d := editDistance(want, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// batchLine is the progress line announcing a batch.
func batchLine(b client.BatchInfo) string {
	s := fmt.Sprintf("Batch %d/%d: %s", b.Index, b.Count, plural(len(b.Nodes), "node"))
	if b.Label != "" {
		s += " (" + b.Label + ")"
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// jsonBatch is one batch in --json and --jsonl output.
type jsonBatch struct {
	Index      int      `json:"index"`
	Size       int      `json:"size"`
	Label      string   `json:"label,omitempty"`
	RequestID  string   `json:"request_id"`
	Nodes      []string `json:"nodes"`
	OK         int      `json:"ok"`
	Failed     int      `json:"failed"`
	Invalid    int      `json:"invalid"`
	NoResponse []string `json:"no_response"`
}

// jsonRollout is what batched JSON output adds: the batches that ran, the
// nodes never sent to and why the rollout stopped.
type jsonRollout struct {
	Batches []jsonBatch `json:"batches"`
	NotSent []string    `json:"not_sent"`
	Stopped string      `json:"stopped,omitempty"`
}

func makeJSONRollout(bs *client.BatchStats) *jsonRollout {
	if bs == nil {
		return nil
	}
	out := &jsonRollout{Batches: []jsonBatch{}, NotSent: []string{}, Stopped: bs.Stopped}
	out.NotSent = append(out.NotSent, bs.NotSent...)
	for _, b := range bs.Batches {
		jb := jsonBatch{
			Index: b.Index, Size: len(b.Nodes), Label: b.Label, RequestID: b.Stats.RequestID, Nodes: b.Nodes,
			OK: b.Stats.OK, Failed: b.Stats.Failed, Invalid: b.Stats.Invalid, NoResponse: b.Stats.NoResponse,
		}
		if jb.NoResponse == nil {
			jb.NoResponse = []string{}
		}
		out.Batches = append(out.Batches, jb)
	}
	return out
}

// rolloutReport prints, after the footer, which batches ran and which nodes
// were never sent the request.
func (p *printer) rolloutReport(bs *client.BatchStats) {
	fmt.Fprintf(p.w, "\nBatches: %d of %d sent\n", len(bs.Batches), bs.Planned)
	for _, b := range bs.Batches {
		label := ""
		if b.Label != "" {
			label = " (" + b.Label + ")"
		}
		fmt.Fprintf(p.w, "   %d/%d%s: %s, %d ok, %d failed, %d no response; request %s\n", b.Index, b.Count, label,
			plural(len(b.Nodes), "node"), b.Stats.OK, b.Stats.Failed, len(b.Stats.NoResponse), b.Stats.RequestID)
	}
	if bs.Stopped != "" {
		p.red.Fprintf(p.w, "\nStopped: %s\n", bs.Stopped)
	}
	if len(bs.NotSent) > 0 {
		fmt.Fprintf(p.w, "\nNot sent to (%d):\n\n", len(bs.NotSent))
		p.columns(bs.NotSent)
	}
}

// rolloutExitCode raises a clean exit code to 2 when some nodes were never
// sent the request: the call did not do what was asked everywhere.
func rolloutExitCode(code int, bs *client.BatchStats) int {
	if bs != nil && len(bs.NotSent) > 0 && code == 0 {
		return 2
	}
	return code
}

// send makes the call: as one request, or batch by batch when the flags ask
// for it (bs is then set). A rollout that ends on an error still says which
// nodes it never reached.
func (ro *rollout) send(ctx context.Context, app *App, f *clientFlags, cl *client.Client, req client.Request, onResult func(client.Result)) (stats *client.Stats, bs *client.BatchStats, err error) {
	if !ro.batched() {
		stats, err = cl.Call(ctx, req, onResult)
		return stats, nil, err
	}
	plan, err := ro.plan(ctx, cl, req.Targets, f.timeout)
	if err != nil {
		return nil, nil, err
	}
	bs, err = cl.CallBatched(ctx, req, plan, onResult, func(b client.BatchInfo) {
		if !f.renderer(app).json() {
			fmt.Fprintln(app.Stderr, batchLine(b))
		}
	})
	if bs == nil {
		return nil, nil, err
	}
	if bs.Stopped != "" && (!f.renderer(app).text() || err != nil) {
		fmt.Fprintf(app.Stderr, "Rollout stopped after %d of %d batches: %s\n", len(bs.Batches), bs.Planned, bs.Stopped)
	}
	if err != nil && len(bs.NotSent) > 0 {
		fmt.Fprintf(app.Stderr, "Not sent to (%d): %s\n", len(bs.NotSent), strings.Join(bs.NotSent, " "))
	}
	return bs.Total, bs, err
}
