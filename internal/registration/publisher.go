package registration

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/protocol"
)

// PublisherOptions configures a node's announcements.
type PublisherOptions struct {
	Identity *security.Identity // signs the announcements
	// CurrentIdentity, when set, is asked for the signing identity at each
	// announcement instead of Identity (certificate renewal).
	CurrentIdentity func() *security.Identity
	Source          Source
	// Publish sends one message (nats.Conn.Publish).
	Publish func(subject string, data []byte) error
	// Interval between periodic announcements; 0 announces only at start,
	// when facts change and on Trigger.
	Interval time.Duration
	// FactsChanged returns a channel closed when the facts next change
	// (facts.Store.Changed); nil means facts changes are not watched.
	FactsChanged func() <-chan struct{}
	Logger       *slog.Logger
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Publisher announces a node on every collective it belongs to.
type Publisher struct {
	opts    PublisherOptions
	log     *slog.Logger
	trigger chan struct{}
}

// NewPublisher returns a publisher; Run starts it.
func NewPublisher(opts PublisherOptions) *Publisher {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Publisher{opts: opts, log: opts.Logger, trigger: make(chan struct{}, 1)}
}

// Trigger asks for an announcement soon, e.g. because the agent set changed.
// It never blocks: triggers that arrive while one is pending coalesce.
func (p *Publisher) Trigger() {
	select {
	case p.trigger <- struct{}{}:
	default:
	}
}

// Run announces at once, then on every trigger, facts change and interval,
// until ctx ends.
func (p *Publisher) Run(ctx context.Context) {
	// The change channel is taken before each announcement reads the facts,
	// so a change in between is never missed (at worst announced twice).
	changed := p.factsChanged()
	p.Announce()
	var (
		timer *time.Timer
		tick  <-chan time.Time // nil without an interval: never ready
	)
	if p.opts.Interval > 0 {
		// The first periodic announcement comes after a random splay within
		// one interval, so a fleet started together (or restarted with its
		// broker) does not announce in lockstep ever after.
		timer = time.NewTimer(rand.N(p.opts.Interval))
		defer timer.Stop()
		tick = timer.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
			changed = p.factsChanged()
			p.Announce()
		case <-p.trigger:
			p.Announce()
		case <-tick:
			p.Announce()
			timer.Reset(p.opts.Interval)
		}
	}
}

// factsChanged is the current facts change channel, or nil (never ready).
func (p *Publisher) factsChanged() <-chan struct{} {
	if p.opts.FactsChanged == nil {
		return nil
	}
	return p.opts.FactsChanged()
}

// Announce signs and publishes one announcement now, on every collective.
// Failures are logged: a missed announcement is repaired by the next one.
func (p *Publisher) Announce() {
	r := Build(p.opts.Source, p.opts.Now(), p.opts.Interval)
	id := p.opts.Identity
	if p.opts.CurrentIdentity != nil {
		id = p.opts.CurrentIdentity()
	}
	data, err := Seal(id, r)
	if err != nil {
		p.log.Error("registration not sent", "err", err)
		return
	}
	for _, c := range r.Collectives {
		if err := p.opts.Publish(protocol.RegistrationSubject(c, r.Identity), data); err != nil {
			p.log.Error("registration not sent", "collective", c, "err", err)
			continue
		}
	}
	p.log.Debug("registration sent", "collectives", r.Collectives, "agents", len(r.Agents), "bytes", len(data))
}
