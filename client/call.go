package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/marionette/mco/filter"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/internal/transport"
	"github.com/marionette/mco/protocol"
)

// Request is one RPC call.
type Request struct {
	Agent  string
	Action string
	Data   map[string]any
	Filter *filter.Filter
	// Collective defaults to the client's main collective.
	Collective string
	// Targets, when set, are the nodes to call directly (no broadcast); the
	// call completes as soon as every one of them has replied. When empty the
	// request is broadcast and completes when replies stop arriving for
	// Quiet, or at Timeout.
	Targets []string
	// Timeout is the longest the call waits for replies (default: the
	// client's Config.Timeout, else 10 s).
	Timeout time.Duration
	// Quiet is the broadcast quiet window (default: the client's DiscoveryQuiet).
	Quiet time.Duration
	// Expect lists nodes a broadcast has reason to expect (they answered
	// before, or the registration inventory knows them): while any of them
	// is missing, the quiet window does not end the broadcast, only the
	// timeout does. Silent ones are reported in Stats.Missing.
	Expect []string
	// NoReplies sends the request fire-and-forget: nodes run it but do not reply.
	NoReplies bool
	// ReplyTo sends the replies to another of this client's own reply
	// subjects (under ReplyPrefix), for another process holding the same
	// certificate to collect; Call then returns once the request is sent.
	// Nodes refuse any other reply subject.
	ReplyTo string
	// Async asks every node to run the action as a detached job and to
	// reply at once with the job's id (Result.JobID): the request's id. It
	// is sent as protocol.AsyncRequestProtocol, which nodes that predate
	// detached jobs drop unrun (they are then silent, never running the
	// action in the foreground instead).
	Async bool
}

// Result is one node's reply.
type Result struct {
	Sender   string
	Status   protocol.StatusCode
	Message  string
	Data     map[string]any
	Received time.Time     // when the reply arrived, before its verification
	RTT      time.Duration // from publishing the request to the reply's arrival
	// Err is set when the reply could not be trusted (bad signature, foreign
	// certificate, sender mismatch). Such a reply is never a success.
	Err error
	// JobID is the id of the detached job the node started for an Async
	// request ("" when it started none).
	JobID string
}

// OK reports whether the reply is trusted and the action succeeded.
func (r Result) OK() bool { return r.Err == nil && r.Status == protocol.OK }

// Stats summarise a call.
type Stats struct {
	RequestID  string
	Agent      string
	Action     string
	Expected   []string // the targets, when known
	Responded  []string // trusted replies, sorted
	OK         int
	Failed     int      // trusted replies with a non-zero status
	Invalid    int      // replies that failed verification
	NoResponse []string // expected but silent, sorted
	Unexpected []string // replied but not expected (a target list was given)
	Start      time.Time
	Duration   time.Duration // publish to completion
	Broadcast  bool
	// Ended says how the call ended: EndedAll, EndedExpected, EndedQuiet,
	// EndedTimeout or EndedCancelled.
	Ended string
	// Missing are the Request.Expect nodes that did not answer a broadcast.
	Missing []string
}

// How a call ended (Stats.Ended).
const (
	// EndedAll: every target of a directed call replied.
	EndedAll = "every target replied"
	// EndedExpected: a broadcast ended by the quiet window after every
	// expected node had answered.
	EndedExpected = "every expected node answered"
	// EndedQuiet: a broadcast with no expected nodes ended by the quiet window.
	EndedQuiet = "quiet window"
	// EndedTimeout: the timeout passed first.
	EndedTimeout = "timeout"
	// EndedCancelled: the context ended the call.
	EndedCancelled = "cancelled"
)

// call collects the replies of one request.
type call struct {
	mu       sync.Mutex
	queue    []Result
	notify   chan struct{}
	inflight int       // replies arrived and not yet verified
	last     time.Time // arrival of the latest reply
}

// arrived counts a reply that came off the connection and awaits verification.
func (cl *call) arrived(at time.Time) {
	cl.mu.Lock()
	cl.inflight++
	if at.After(cl.last) {
		cl.last = at
	}
	cl.mu.Unlock()
}

// add queues a verified reply (one counted by arrived).
func (cl *call) add(r Result) {
	cl.mu.Lock()
	cl.inflight--
	cl.queue = append(cl.queue, r)
	cl.mu.Unlock()
	select {
	case cl.notify <- struct{}{}:
	default:
	}
}

// lastArrival is when the latest reply arrived; pending says some arrived
// reply has not been drained yet (it is being verified, or queued).
func (cl *call) lastArrival() (last time.Time, pending bool) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.last, cl.inflight > 0 || len(cl.queue) > 0
}

func (cl *call) drain() []Result {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	q := cl.queue
	cl.queue = nil
	return q
}

// Call sends a request and calls onResult for each reply as it arrives (from
// one goroutine at a time). It returns when every target replied, when
// broadcast replies stop, at the timeout, or when ctx ends.
func (c *Client) Call(ctx context.Context, r Request, onResult func(Result)) (*Stats, error) {
	if r.Agent == "" || r.Action == "" {
		return nil, errors.New("a request needs an agent and an action")
	}
	collective := r.Collective
	if collective == "" {
		collective = c.cfg.Collective
	}
	if !c.mayAddress(collective) {
		return nil, fmt.Errorf("collective %q is not one this client is configured for (%s)", collective, strings.Join(c.collectives(), ", "))
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = c.cfg.Timeout
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	quiet := r.Quiet
	if quiet <= 0 {
		quiet = c.cfg.DiscoveryQuiet
	}
	detached := r.NoReplies || r.ReplyTo != ""
	if r.ReplyTo != "" && !strings.HasPrefix(r.ReplyTo, c.ReplyPrefix(collective)+".") {
		return nil, fmt.Errorf("reply subject %q is not one of this client's (%s.*): nodes would refuse it", r.ReplyTo, c.ReplyPrefix(collective))
	}
	if !detached {
		if err := c.subscribe(collective); err != nil {
			return nil, err
		}
	}
	id := newRequestID()
	req := &protocol.Request{
		Protocol: protocol.RequestProtocol, ID: id, Sender: c.id.Name(),
		CallerID: security.CallerID(c.id.Name()), Collective: collective,
		Agent: r.Agent, Action: r.Action, Filter: r.Filter, Data: r.Data,
		TTL: ttlSeconds(c.cfg.TTL), ProcessResults: !r.NoReplies,
	}
	if r.Async {
		req.Protocol, req.Async = protocol.AsyncRequestProtocol, true
	}
	switch {
	case r.ReplyTo != "":
		req.ReplyTo = r.ReplyTo
	case !r.NoReplies:
		req.ReplyTo = protocol.ReplySubject(collective, c.hash, id)
	}
	stats := &Stats{RequestID: id, Agent: r.Agent, Action: r.Action, Broadcast: len(r.Targets) == 0}
	expected := map[string]bool{}
	for _, t := range r.Targets {
		expected[t] = true
	}
	stats.Expected = sortedKeys(expected)

	cl := &call{notify: make(chan struct{}, 1)}
	if !detached {
		c.mu.Lock()
		c.pending[id] = cl
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			delete(c.pending, id)
			c.mu.Unlock()
		}()
	}

	stats.Start = time.Now()
	req.Time = stats.Start.UnixNano()
	msg, err := c.sign(req)
	if err != nil {
		return nil, err
	}
	before := c.nc.LastError()
	if stats.Broadcast {
		err = c.nc.Publish(protocol.BroadcastSubject(collective, r.Agent), msg)
	} else {
		for _, t := range stats.Expected {
			if err = c.nc.Publish(protocol.NodeSubject(collective, t), msg); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = c.nc.Flush()
	}
	if err == nil {
		// The broker refuses a publish asynchronously; the flush round trip
		// guarantees the refusal has arrived. Without this check a
		// fire-and-forget request to a forbidden collective looks sent.
		if le := transport.Refusal(c.nc, before, "publish", collective+"."); le != nil {
			err = fmt.Errorf("broker refused the request: %w", le)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("publishing request: %w", err)
	}
	if detached {
		stats.NoResponse = nil
		stats.Duration = time.Since(stats.Start)
		return stats, nil
	}

	seen := map[string]bool{}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var quietC <-chan time.Time
	var quietT *time.Timer
	defer func() {
		if quietT != nil {
			quietT.Stop()
		}
	}()
	remaining := len(expected)
	// A broadcast's expected nodes: the quiet window cannot end it while
	// one of them is missing.
	expect := map[string]bool{}
	if stats.Broadcast {
		for _, n := range r.Expect {
			expect[n] = true
		}
	}
	missing := len(expect)
	stats.Ended = EndedAll
loop:
	for stats.Broadcast || remaining > 0 {
		select {
		case <-ctx.Done():
			stats.Ended = EndedCancelled
			break loop
		case <-deadline.C:
			stats.Ended = EndedTimeout
			break loop
		case <-quietC:
			// The window runs from the latest arrival, and every reply that
			// arrived within it counts, however long its verification takes.
			last, pending := cl.lastArrival()
			if pending {
				quietC = nil // the drain that follows re-arms the window
				continue
			}
			if wait := quiet - time.Since(last); wait > 0 {
				quietT.Reset(wait)
				continue
			}
			if missing > 0 {
				quietC = nil // wait on for the expected: the next reply re-arms the window
				continue
			}
			stats.Ended = EndedQuiet
			if len(expect) > 0 {
				stats.Ended = EndedExpected
			}
			break loop
		case <-cl.notify:
			for _, res := range cl.drain() {
				res.RTT = res.Received.Sub(stats.Start)
				if res.Err != nil {
					stats.Invalid++
					onResult(res)
					continue
				}
				if seen[res.Sender] {
					continue // a duplicate: the node already answered
				}
				seen[res.Sender] = true
				if expect[res.Sender] {
					missing--
				}
				stats.Responded = append(stats.Responded, res.Sender)
				if res.Status == protocol.OK {
					stats.OK++
				} else {
					stats.Failed++
				}
				if !stats.Broadcast {
					if expected[res.Sender] {
						remaining--
					} else {
						stats.Unexpected = append(stats.Unexpected, res.Sender)
					}
				}
				onResult(res)
			}
			if stats.Broadcast && len(seen) > 0 {
				// Quiet since the latest arrival, not since this drain: the
				// replies may have waited for verification.
				last, _ := cl.lastArrival()
				wait := quiet - time.Since(last)
				if quietT == nil {
					quietT = time.NewTimer(wait)
				} else {
					quietT.Reset(wait)
				}
				quietC = quietT.C
			}
		}
	}
	stats.Duration = time.Since(stats.Start)
	sort.Strings(stats.Responded)
	for _, t := range stats.Expected {
		if !seen[t] {
			stats.NoResponse = append(stats.NoResponse, t)
		}
	}
	for _, t := range sortedKeys(expect) {
		if !seen[t] {
			stats.Missing = append(stats.Missing, t)
		}
	}
	return stats, ctx.Err()
}

// DiscoverRequest selects nodes by broadcast.
type DiscoverRequest struct {
	Collective string
	Filter     *filter.Filter
	// Timeout caps discovery (default: the client's discovery timeout);
	// discovery normally ends earlier, once replies stop for Quiet.
	Timeout time.Duration
	Quiet   time.Duration
	// Expect are nodes discovery has reason to expect (see Request.Expect):
	// discovery waits for them up to Timeout.
	Expect []string
}

// Discovery is the outcome of a broadcast discovery.
type Discovery struct {
	Nodes    []string // trusted, OK replies, sorted
	Duration time.Duration
	Ended    string   // how it ended (Stats.Ended)
	Expected int      // how many nodes it expected
	Missing  []string // expected nodes that did not answer, sorted
}

// Discover finds the nodes matching a filter: it broadcasts an rpcutil ping
// carrying the filter and collects the identities of trusted replies.
func (c *Client) Discover(ctx context.Context, d DiscoverRequest) ([]string, error) {
	disc, err := c.DiscoverNodes(ctx, d)
	if disc == nil {
		return nil, err
	}
	return disc.Nodes, err
}

// DiscoverNodes is Discover with the details of how discovery went.
func (c *Client) DiscoverNodes(ctx context.Context, d DiscoverRequest) (*Discovery, error) {
	// A filter that cannot match (a bad regex) would find zero nodes, which
	// looks like an empty collective: say what is wrong instead.
	if d.Filter != nil {
		if err := d.Filter.Validate(); err != nil {
			return nil, fmt.Errorf("discovery filter: %w", err)
		}
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = c.cfg.DiscoveryTimeout
	}
	disc := &Discovery{}
	stats, err := c.Call(ctx, Request{
		Agent: "rpcutil", Action: "ping", Collective: d.Collective, Filter: d.Filter,
		Timeout: timeout, Quiet: d.Quiet, Expect: d.Expect,
	}, func(r Result) {
		if r.OK() {
			disc.Nodes = append(disc.Nodes, r.Sender)
		}
	})
	sort.Strings(disc.Nodes)
	if stats != nil {
		disc.Duration, disc.Ended, disc.Missing = stats.Duration, stats.Ended, stats.Missing
		disc.Expected = len(dedupeStrings(d.Expect))
	}
	return disc, err
}

// DiscoveryTimeout is the longest a broadcast discovery waits by default.
func (c *Client) DiscoveryTimeout() time.Duration { return c.cfg.DiscoveryTimeout }

// ReplyPrefix is the stem of this client's reply subjects in a collective:
// <collective>.reply.<hash of the certname>. Only subjects under it may be
// used as Request.ReplyTo, and only this certificate may subscribe to them.
func (c *Client) ReplyPrefix(collective string) string {
	return protocol.ReplyPrefix(collective, c.hash)
}

// ttlSeconds is the wire ttl: whole seconds, rounded up so that a ttl of
// 1.5 s is not cut to 1 s, nor 0.5 s to 0 (which every node refuses).
func ttlSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// collectives lists the collectives the client may address.
func (c *Client) collectives() []string {
	if len(c.cfg.Collectives) == 0 {
		return []string{c.cfg.Collective}
	}
	return c.cfg.Collectives
}

func (c *Client) mayAddress(collective string) bool {
	for _, have := range c.collectives() {
		if have == collective {
			return true
		}
	}
	return false
}

// sortedKeys is never nil: the lists it makes appear in --json output as [].
func sortedKeys(m map[string]bool) []string {
	return append([]string{}, slices.Sorted(maps.Keys(m))...)
}

func dedupeStrings(in []string) []string {
	m := map[string]bool{}
	for _, s := range in {
		m[s] = true
	}
	return sortedKeys(m)
}
