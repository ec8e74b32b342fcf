package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Amount is a number of nodes, either absolute ("10") or a share of a total
// ("10%"), as given to the CLI's --batch, --limit and --max-failures.
type Amount struct {
	N         int     // the count, when !IsPercent
	Percent   float64 // the share in percent (0–100), when IsPercent
	IsPercent bool
}

// ParseAmount reads "N" (a non-negative integer) or "P%" (a percentage from 0
// to 100). Whether zero is acceptable is up to the caller (see IsZero).
func ParseAmount(s string) (Amount, error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || math.IsNaN(v) {
			return Amount{}, fmt.Errorf("%q is not a number or a percentage (N or N%%)", s)
		}
		if v < 0 || v > 100 {
			return Amount{}, fmt.Errorf("%q: a percentage must be between 0%% and 100%%", s)
		}
		return Amount{Percent: v, IsPercent: true}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return Amount{}, fmt.Errorf("%q is not a number or a percentage (N or N%%)", s)
	}
	if n < 0 {
		return Amount{}, fmt.Errorf("%q: must not be negative", s)
	}
	return Amount{N: n}, nil
}

// IsZero reports whether the amount selects no node at all.
func (a Amount) IsZero() bool {
	if a.IsPercent {
		return a.Percent == 0
	}
	return a.N == 0
}

// String renders the amount as ParseAmount reads it.
func (a Amount) String() string {
	if a.IsPercent {
		return strconv.FormatFloat(a.Percent, 'f', -1, 64) + "%"
	}
	return strconv.Itoa(a.N)
}

// Of is the amount applied to total nodes. A percentage is rounded up, so a
// non-zero share of a non-empty set is never zero nodes; the result never
// exceeds total.
func (a Amount) Of(total int) int {
	n := a.N
	if a.IsPercent {
		n = int(math.Ceil(a.Percent * float64(total) / 100))
	}
	return min(max(n, 0), total)
}

// Exceeded reports whether failures out of sent nodes is more than the
// amount allows: more than N nodes, or more than P% of sent.
func (a Amount) Exceeded(failures, sent int) bool {
	if a.IsPercent {
		return float64(failures)*100 > a.Percent*float64(sent)
	}
	return failures > a.N
}

// Batch is a group of nodes sent one request.
type Batch struct {
	Label string // what the batch stands for, e.g. "hagroup=a" (may be empty)
	Nodes []string
}

// MissingLabel is the value part of the label of the batch of nodes that
// lack the fact GroupByValue groups by.
const MissingLabel = "(missing)"

// SplitBatches cuts every batch into batches of at most size nodes, keeping
// their order and labels. A size of zero or less leaves them whole; empty
// batches are dropped.
func SplitBatches(batches []Batch, size int) []Batch {
	var out []Batch
	for _, b := range batches {
		if size <= 0 || len(b.Nodes) <= size {
			if len(b.Nodes) > 0 {
				out = append(out, b)
			}
			continue
		}
		for i := 0; i < len(b.Nodes); i += size {
			out = append(out, Batch{Label: b.Label, Nodes: b.Nodes[i:min(i+size, len(b.Nodes))]})
		}
	}
	return out
}

// GroupByValue makes one batch per distinct value of a fact, labelled
// "fact=value", in sorted value order (numerically when both values are
// numbers). Nodes without an entry in values form a last batch labelled
// "fact=(missing)", so no node is dropped. Nodes keep their given order
// within a batch.
func GroupByValue(fact string, nodes []string, values map[string]string) []Batch {
	groups := map[string][]string{}
	var missing []string
	for _, n := range nodes {
		v, ok := values[n]
		if !ok {
			missing = append(missing, n)
			continue
		}
		groups[v] = append(groups[v], n)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return lessValue(keys[i], keys[j]) })
	out := make([]Batch, 0, len(keys)+1)
	for _, k := range keys {
		out = append(out, Batch{Label: fact + "=" + k, Nodes: groups[k]})
	}
	if len(missing) > 0 {
		out = append(out, Batch{Label: fact + "=" + MissingLabel, Nodes: missing})
	}
	return out
}

// lessValue orders fact values: numbers numerically (so 9 comes before 10),
// anything else as text.
func lessValue(a, b string) bool {
	fa, errA := strconv.ParseFloat(a, 64)
	fb, errB := strconv.ParseFloat(b, 64)
	if errA == nil && errB == nil && fa != fb {
		return fa < fb
	}
	return a < b
}

// LimitNodes picks at most limit of the nodes at random (all of them when
// the limit is zero or covers them all). rng makes the pick deterministic;
// nil uses a randomly seeded source. The result is sorted, and the pick
// depends only on the set of nodes and rng, not on their order.
func LimitNodes(nodes []string, limit Amount, rng *rand.Rand) []string {
	all := append([]string(nil), nodes...)
	sort.Strings(all)
	n := limit.Of(len(all))
	if limit.IsZero() || n >= len(all) {
		return all
	}
	shuffle := rand.Shuffle
	if rng != nil {
		shuffle = rng.Shuffle
	}
	shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	out := all[:n]
	sort.Strings(out)
	return out
}

// BatchPlan says how CallBatched rolls a request out.
type BatchPlan struct {
	// Batches are sent in order, each as a separately signed request with
	// its own id and ttl, once the previous one has completed.
	Batches []Batch
	// Sleep is the pause between two batches.
	Sleep time.Duration
	// MaxFailures, when set, stops the rollout before the next batch once
	// the failed plus non-responding nodes so far exceed it (a count, or a
	// percentage of the nodes sent to so far).
	MaxFailures *Amount
}

// BatchInfo announces a batch about to be sent.
type BatchInfo struct {
	Index int // 1-based
	Count int // number of batches in the plan
	Batch
}

// BatchResult is a batch that was sent and its statistics.
type BatchResult struct {
	BatchInfo
	Stats *Stats
}

// BatchStats summarise a rollout.
type BatchStats struct {
	Planned int           // number of batches in the plan
	Batches []BatchResult // the batches sent, in order
	// NotSent are the nodes of the batches never sent (the rollout stopped),
	// sorted.
	NotSent []string
	// Stopped explains why the rollout ended early; empty when every batch
	// was sent.
	Stopped string
	// Total merges every batch's statistics: Expected, Responded, NoResponse
	// and Unexpected are unions, the counters sums; RequestID is the first
	// batch's; Duration runs from the first publish to the end, sleeps
	// included.
	Total *Stats
}

// Failures counts the failed and non-responding nodes over the batches sent.
func (s *BatchStats) Failures() int {
	n := 0
	for _, b := range s.Batches {
		n += b.Stats.Failed + len(b.Stats.NoResponse)
	}
	return n
}

// Sent counts the nodes the batches sent so far were addressed to.
func (s *BatchStats) Sent() int {
	n := 0
	for _, b := range s.Batches {
		n += len(b.Nodes)
	}
	return n
}

// CallBatched rolls req out batch by batch (req.Targets is replaced by each
// batch's nodes). onBatch, when not nil, hears of each batch just before it
// is sent; onResult receives every reply as Call would. It returns the
// statistics of what ran even when it also returns an error (the context
// ended, or a batch could not be sent), in which case the remaining nodes are
// in NotSent.
func (c *Client) CallBatched(ctx context.Context, req Request, plan BatchPlan, onResult func(Result), onBatch func(BatchInfo)) (*BatchStats, error) {
	if req.Agent == "" || req.Action == "" {
		return nil, errors.New("a request needs an agent and an action")
	}
	return runBatches(ctx, req, plan, onBatch, func(ctx context.Context, r Request) (*Stats, error) {
		return c.Call(ctx, r, onResult)
	})
}

// runBatches is CallBatched's loop, with the sending of one request left to
// send.
func runBatches(ctx context.Context, req Request, plan BatchPlan, onBatch func(BatchInfo), send func(context.Context, Request) (*Stats, error)) (*BatchStats, error) {
	if len(plan.Batches) == 0 {
		return nil, errors.New("a batch plan needs at least one batch")
	}
	for i, b := range plan.Batches {
		if len(b.Nodes) == 0 {
			return nil, fmt.Errorf("batch %d of the plan has no nodes", i+1)
		}
	}
	bs := &BatchStats{Planned: len(plan.Batches)}
	start := time.Now()
	var err error
	next := 0
	for ; next < len(plan.Batches); next++ {
		if next > 0 {
			if plan.MaxFailures != nil && plan.MaxFailures.Exceeded(bs.Failures(), bs.Sent()) {
				bs.Stopped = fmt.Sprintf("%d of %d nodes failed or did not respond, more than --max-failures %s allows",
					bs.Failures(), bs.Sent(), plan.MaxFailures)
				break
			}
			if err = sleep(ctx, plan.Sleep); err != nil {
				bs.Stopped = "interrupted: " + err.Error()
				break
			}
		}
		b := plan.Batches[next]
		info := BatchInfo{Index: next + 1, Count: len(plan.Batches), Batch: b}
		if onBatch != nil {
			onBatch(info)
		}
		r := req
		r.Targets = b.Nodes
		var st *Stats
		st, err = send(ctx, r)
		if st != nil {
			bs.Batches = append(bs.Batches, BatchResult{BatchInfo: info, Stats: st})
		}
		if err != nil {
			if st != nil {
				next++ // the batch went out; only what follows was not sent
			}
			bs.Stopped = fmt.Sprintf("batch %d/%d: %v", info.Index, info.Count, err)
			break
		}
	}
	for _, b := range plan.Batches[next:] {
		bs.NotSent = append(bs.NotSent, b.Nodes...)
	}
	sort.Strings(bs.NotSent)
	bs.Total = mergeStats(req, bs.Batches, start)
	return bs, err
}

// sleep pauses for d unless ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// mergeStats sums the statistics of the batches that ran.
func mergeStats(req Request, batches []BatchResult, start time.Time) *Stats {
	total := &Stats{Agent: req.Agent, Action: req.Action, Start: start}
	expected, responded, silent, unexpected := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, b := range batches {
		s := b.Stats
		if i == 0 {
			total.RequestID, total.Start = s.RequestID, s.Start
		}
		total.OK += s.OK
		total.Failed += s.Failed
		total.Invalid += s.Invalid
		for _, set := range []struct {
			m    map[string]bool
			list []string
		}{{expected, s.Expected}, {responded, s.Responded}, {silent, s.NoResponse}, {unexpected, s.Unexpected}} {
			for _, n := range set.list {
				set.m[n] = true
			}
		}
	}
	total.Expected, total.Responded = sortedKeys(expected), sortedKeys(responded)
	if len(silent) > 0 {
		total.NoResponse = sortedKeys(silent)
	}
	if len(unexpected) > 0 {
		total.Unexpected = sortedKeys(unexpected)
	}
	total.Duration = time.Since(total.Start)
	return total
}

// FactValues asks nodes for one fact (rpcutil get_fact) and returns each
// answering node's value as text: strings as they are, anything else as
// JSON. Nodes that lack the fact, fail or do not answer are absent from the
// map. timeout zero means Call's default.
func (c *Client) FactValues(ctx context.Context, collective string, nodes []string, fact string, timeout time.Duration) (map[string]string, error) {
	values := map[string]string{}
	if len(nodes) == 0 {
		return values, nil
	}
	_, err := c.Call(ctx, Request{
		Agent: "rpcutil", Action: "get_fact", Data: map[string]any{"fact": fact},
		Collective: collective, Targets: nodes, Timeout: timeout,
	}, func(r Result) {
		v, ok := r.Data["value"]
		if !r.OK() || !ok || v == nil {
			return
		}
		if s, isString := v.(string); isString {
			values[r.Sender] = s
			return
		}
		b, err := json.Marshal(v)
		if err != nil {
			return // not representable: treated as missing
		}
		values[r.Sender] = string(b)
	})
	if err != nil {
		return nil, fmt.Errorf("asking %d nodes for fact %s: %w", len(nodes), fact, err)
	}
	return values, nil
}

// FactNames asks nodes for their inventory and returns every fact name they
// have, nested ones as dotted paths (os.family), sorted. --batch-by uses it to
// suggest the fact meant when no node has the one asked for.
func (c *Client) FactNames(ctx context.Context, collective string, nodes []string, timeout time.Duration) ([]string, error) {
	names := map[string]bool{}
	if len(nodes) == 0 {
		return nil, nil
	}
	_, err := c.Call(ctx, Request{
		Agent: "rpcutil", Action: "inventory", Collective: collective, Targets: nodes, Timeout: timeout,
	}, func(r Result) {
		if facts, ok := r.Data["facts"].(map[string]any); r.OK() && ok {
			addFactNames(names, "", facts)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("asking %d nodes for their facts: %w", len(nodes), err)
	}
	return sortedKeys(names), nil
}

func addFactNames(names map[string]bool, prefix string, facts map[string]any) {
	for k, v := range facts {
		name := prefix + k
		names[name] = true
		if sub, ok := v.(map[string]any); ok {
			addFactNames(names, name+".", sub)
		}
	}
}
