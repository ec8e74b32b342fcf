// Package server is the node daemon: it hosts agents and runs every request
// that reaches it through one pipeline, in this order (see pipeline.go):
//
//	decode → authenticate → freshness and replay → filter (no data plugins)
//	→ authorize → filter data plugins → agent and action → audit
//	→ validate input → admit (per-caller limit) → run (with the action
//	timeout; an Async request starts a detached job instead, detach.go)
//	→ sign reply → publish
//
// Every step returns nil or a refusal, handled in one place (refuse). A
// request that fails a step before authorization is dropped with a counted
// reason and a log line; from authorization on, the caller always gets a
// signed reply (denied, unknown action, invalid input, busy, timeout, ...).
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/filter"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/protocol"
)

// Facts is where the node's facts and classes come from.
type Facts interface {
	Facts() map[string]any
	Fact(path string) (any, bool)
	Classes() []string
}

// DataSource answers data plugin queries (fstat('/etc/issue') and friends).
type DataSource interface {
	Query(ctx context.Context, plugin, arg string) (map[string]any, error)
	// Names lists the plugins, for inventories.
	Names() []string
}

// Agents is the set of agents the node serves; the node builder owns it
// (an *agents.Registry) and calls Resubscribe after changing it.
type Agents interface {
	Agent(name string) (*agent.Agent, bool)
	AgentNames() []string
}

// Decision is an authorization outcome.
type Decision struct {
	Allowed bool
	Rule    string // the policy line or default that decided, for the audit log
}

// Authorizer decides whether a caller may run an action on this node. ctx is
// the request's data budget: an Authorizer whose policies call data plugins
// passes it to node.Data.
type Authorizer interface {
	Authorize(ctx context.Context, caller, agent, action string, node filter.Node) Decision
}

// AuditEvent is what the server tells the auditor about a request.
type AuditEvent struct {
	Request *protocol.Request
	// Signer is the certname of the certificate that signed the request:
	// the caller itself, or a privileged front end acting for it.
	Signer   string
	Decision Decision
	// Set on completion only.
	Status   protocol.StatusCode
	Message  string
	Duration time.Duration
	Complete bool
	// WithRequest, on a completion, asks for the request record too: it
	// was not written yet (a quick action's, see Server.auditRequest), and
	// both go in with one write, the request record first.
	WithRequest bool
	// JobID is the detached job an Async request starts (its own id), on
	// both its request and its completion record.
	JobID string
}

// Auditor records every request that passed authentication.
type Auditor interface {
	Audit(ev AuditEvent) error
}

// Options configures a node.
type Options struct {
	Identity    *security.Identity // certificate and key; its certname is the node identity
	Verifier    *security.Verifier
	Collectives []string // the first is the main collective
	Facts       Facts
	Agents      Agents     // nil: none
	Data        DataSource // optional
	Authorizer  Authorizer // optional: nil allows every authenticated caller
	Auditor     Auditor    // optional
	// AuditFailOpen keeps serving when the auditor fails; by default such a
	// request is refused with status 5.
	AuditFailOpen  bool
	MaxMessageSize int           // default 1 MiB
	Skew           time.Duration // default 5 s
	MaxTTL         time.Duration // default 1 h
	// DataBudget is the time all data plugin calls of one request may take
	// together, across its filter and its ActionPolicy rules (default 2 s).
	// A filter's data calls run only for an authorized caller, off the
	// delivery goroutine; a call past the budget fails, and a failed call
	// never selects a node nor allows a request.
	DataBudget time.Duration
	// ReplayFile persists the ids of accepted requests until they expire,
	// so that a restarted node cannot accept a request it saw before; ""
	// keeps them in memory only (in-process nodes of mco dev and tests).
	ReplayFile string
	// ReplayMaxEntries and ReplayMaxPerCaller bound the replay cache (in ids;
	// defaults DefaultReplayMaxEntries, DefaultReplayMaxPerCaller). A
	// request that would exceed either is refused and counted, never let
	// through by forgetting an older id.
	ReplayMaxEntries   int
	ReplayMaxPerCaller int
	// MaxRunningPerCaller is how many slow (not quick) actions one signer
	// may have running on the node at once (default
	// DefaultMaxRunningPerCaller); more are answered "try again later".
	MaxRunningPerCaller int
	// Concurrency is how many requests the node decodes, authenticates and
	// checks at once. Verifying a signature is most of a request's cost and
	// a subscription delivers one message at a time, so a lone node spreads
	// that work over every core: 0 means GOMAXPROCS. 1 handles each request
	// on its subscription's goroutine, for nodes emulated by the thousand
	// in one process, whose many subscriptions already keep every core busy.
	Concurrency int
	Version     string
	Logger      *slog.Logger
	// Jobs starts Async requests as detached jobs; nil refuses them (with
	// a reply saying so, after authorization and audit like any other).
	Jobs Detacher
	// Observer, when set, is told how every authenticated request ended
	// (metrics; see Observer).
	Observer Observer
	// CurrentIdentity, when set, returns the identity that signs each
	// reply, so that a certificate renewed on disk is used at once
	// (security.IdentityFiles.Current, which keeps the certname). An
	// identity with another certname than Identity's is not used: the
	// certname is the node's name. nil signs with Identity.
	CurrentIdentity func() *security.Identity
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// DefaultMaxRunningPerCaller is Options.MaxRunningPerCaller's default.
const DefaultMaxRunningPerCaller = 20

// Server is one node.
type Server struct {
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	stats  *Stats
	replay *replayCache

	mu   sync.Mutex // guards nc and subs
	nc   *nats.Conn
	subs map[string]*nats.Subscription // subject -> subscription

	wg sync.WaitGroup // running actions and requests being handled

	runningMu sync.Mutex
	running   map[string]int // signer -> slow actions running

	// slots bounds the requests handled at once (Options.Concurrency); nil
	// handles each on the delivering goroutine.
	slots chan struct{}
}

// New creates a node serving opts.Agents. Build nodes with internal/node,
// which wires the agents, data plugins and auditor this needs.
func New(opts Options) (*Server, error) {
	if opts.Identity == nil || opts.Verifier == nil {
		return nil, errors.New("server needs an identity and a verifier")
	}
	if len(opts.Collectives) == 0 {
		opts.Collectives = []string{"mcollective"}
	}
	if opts.MaxMessageSize <= 0 {
		opts.MaxMessageSize = 1 << 20
	}
	if opts.Skew <= 0 {
		opts.Skew = 5 * time.Second
	}
	if opts.MaxTTL <= 0 {
		opts.MaxTTL = time.Hour
	}
	if opts.MaxRunningPerCaller <= 0 {
		opts.MaxRunningPerCaller = DefaultMaxRunningPerCaller
	}
	if opts.DataBudget <= 0 {
		opts.DataBudget = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Facts == nil {
		opts.Facts = noFacts{}
	}
	if opts.Agents == nil {
		opts.Agents = noAgents{}
	}
	replay := newReplayCache(opts.ReplayMaxEntries, opts.ReplayMaxPerCaller)
	if opts.ReplayFile != "" {
		var err error
		if replay, err = openReplayCache(opts.ReplayFile, opts.Now(), opts.ReplayMaxEntries, opts.ReplayMaxPerCaller); err != nil {
			return nil, err
		}
	}
	s := &Server{
		opts:    opts,
		log:     opts.Logger.With("node", opts.Identity.Name()),
		now:     opts.Now,
		stats:   newStats(),
		replay:  replay,
		subs:    map[string]*nats.Subscription{},
		running: map[string]int{},
	}
	if n := cmp.Or(opts.Concurrency, runtime.GOMAXPROCS(0)); n > 1 {
		s.slots = make(chan struct{}, n)
	}
	return s, nil
}

// Identity is the node's name.
func (s *Server) Identity() string { return s.opts.Identity.Name() }

// Collectives lists the node's collectives, main first.
func (s *Server) Collectives() []string { return s.opts.Collectives }

// Stats exposes the node's counters.
func (s *Server) Stats() *Stats { return s.stats }

// Version is the daemon version.
func (s *Server) Version() string { return s.opts.Version }

// agent returns a hosted agent.
func (s *Server) agent(name string) (*agent.Agent, bool) { return s.opts.Agents.Agent(name) }

// Resubscribe brings the node's subscriptions in line with its agents, after
// the set changed; a no-op before Start.
func (s *Server) Resubscribe() error { return s.resubscribe() }

// Start subscribes the node on an established connection. The connection is
// the caller's: it should have been dialled with this node's certificate.
func (s *Server) Start(nc *nats.Conn) error {
	s.mu.Lock()
	s.nc = nc
	s.mu.Unlock()
	if err := s.resubscribe(); err != nil {
		return err
	}
	if !nc.IsConnected() {
		// Started before the broker is reachable: the subscriptions are
		// replayed when the connection comes up, so wait rather than fail.
		s.log.Warn("broker not reachable yet: serving as soon as the connection comes up")
		return nil
	}
	return nc.Flush()
}

// subjects lists every subject the node listens on for its current agents.
func (s *Server) subjects() map[string]bool {
	want := map[string]bool{}
	for _, c := range s.opts.Collectives {
		want[protocol.NodeSubject(c, s.Identity())] = true
		for _, name := range s.opts.Agents.AgentNames() {
			want[protocol.BroadcastSubject(c, name)] = true
		}
	}
	return want
}

func (s *Server) resubscribe() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nc == nil {
		return nil
	}
	want := s.subjects()
	for subj, sub := range s.subs {
		if !want[subj] {
			if err := sub.Unsubscribe(); err != nil {
				return fmt.Errorf("unsubscribing %s: %w", subj, err)
			}
			delete(s.subs, subj)
		}
	}
	for subj := range want {
		if _, ok := s.subs[subj]; ok {
			continue
		}
		handler := s.onDirected
		if !strings.Contains(subj, ".node.") {
			handler = s.onBroadcast
		}
		sub, err := s.nc.Subscribe(subj, handler)
		if err != nil {
			return fmt.Errorf("subscribing %s: %w", subj, err)
		}
		// A burst of requests must queue, not be dropped as a slow consumer.
		_ = sub.SetPendingLimits(-1, 256<<20)
		s.subs[subj] = sub
	}
	return nil
}

// Stop unsubscribes, so no new request arrives, and waits for running
// actions to finish or time out; their replies still go out before the node
// lets go of the connection.
func (s *Server) Stop() {
	s.mu.Lock()
	for subj, sub := range s.subs {
		_ = sub.Unsubscribe()
		delete(s.subs, subj)
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.mu.Lock()
	s.nc = nil
	s.mu.Unlock()
	if err := s.replay.close(); err != nil {
		s.log.Error("closing the replay cache", "err", err)
	}
}

// Deliver hands a message to the node exactly as its subscription on
// subject would, Options.Concurrency included: for benchmarks that measure
// the node's own throughput without a broker delivering the requests.
func (s *Server) Deliver(subject string, data []byte) {
	s.dispatch(subject, data, !strings.Contains(subject, ".node."))
}

func (s *Server) onBroadcast(m *nats.Msg) { s.dispatch(m.Subject, m.Data, true) }

func (s *Server) onDirected(m *nats.Msg) { s.dispatch(m.Subject, m.Data, false) }

// dispatch handles a request on a goroutine of its own while fewer than
// Options.Concurrency are in progress, else waits for one to finish: the
// wait holds the subscription back, so the broker's pending limits bound a
// flood instead of goroutines piling up here. That goroutine is the
// request's alone, so a quick action runs on it too (inline) rather than on
// yet another one; a slow action still gets its own and frees the slot.
func (s *Server) dispatch(subject string, data []byte, inline bool) {
	if s.slots == nil {
		s.handle(subject, data, inline)
		return
	}
	s.slots <- struct{}{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.slots }()
		growStack(0)
		s.handle(subject, data, true)
	}()
}

// requestStack is about the stack a request's verification and reply need:
// ed25519's scalar multiplications keep their tables on it.
const requestStack = 8 << 10

// growStack grows a new goroutine's stack to requestStack at once, while it
// holds a single frame. Grown on demand instead, deep inside ed25519, the
// runtime doubles it several times and copies and adjusts every frame each
// time: 3-4 % of a request's CPU in BenchmarkNode's profile, gone with this.
// The runtime's adaptive start size does not help: it follows the stacks
// it finds at GC time, mostly idle ones.
//
//go:noinline
func growStack(i int) byte {
	var pad [requestStack - 1024]byte // leaves room for the frames below
	return pad[i]
}

// publish sends a message on the node's connection.
func (s *Server) publish(subject string, data []byte) error {
	s.mu.Lock()
	nc := s.nc
	s.mu.Unlock()
	if nc == nil {
		return errors.New("not connected")
	}
	return nc.Publish(subject, data)
}

type noFacts struct{}

func (noFacts) Facts() map[string]any   { return map[string]any{} }
func (noFacts) Fact(string) (any, bool) { return nil, false }
func (noFacts) Classes() []string       { return nil }

type noAgents struct{}

func (noAgents) Agent(string) (*agent.Agent, bool) { return nil, false }
func (noAgents) AgentNames() []string              { return nil }

// Observer is told how every authenticated request ended: the agent and
// action (as the node knows them), the status replied and how long the
// action ran (0 when it did not run). Metrics use it; it must be quick.
type Observer interface {
	Completed(agent, action string, status protocol.StatusCode, d time.Duration)
}

// observe reports a request's end to the observer, if any.
func (s *Server) observe(r *request, status protocol.StatusCode, d time.Duration) {
	if s.opts.Observer != nil {
		s.opts.Observer.Completed(r.req.Agent, r.req.Action, status, d)
	}
}

// signer is the identity that signs a reply now (Options.CurrentIdentity).
func (s *Server) signer() *security.Identity {
	if s.opts.CurrentIdentity != nil {
		if id := s.opts.CurrentIdentity(); id != nil && id.Name() == s.Identity() {
			return id
		}
	}
	return s.opts.Identity
}
