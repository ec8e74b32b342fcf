package server

import (
	"sync/atomic"
	"time"
)

// Drop reasons, counted per reason and reported by rpcutil daemon_stats.
const (
	dropOversized  = "oversized"
	dropMalformed  = "malformed"
	dropProtocol   = "unknown_protocol"
	dropSignature  = "bad_signature"
	dropCert       = "untrusted_certificate"
	dropCaller     = "caller_mismatch"
	dropExpired    = "expired"
	dropFuture     = "future"
	dropReplay     = "replayed"
	dropCollective = "wrong_collective"
	dropReplyTo    = "bad_reply_to"
	dropTTL        = "bad_ttl"
	// dropDataDenied: ActionPolicy denied a caller whose filter needs data
	// plugins; they are not run for it, so the request is dropped unanswered.
	dropDataDenied = "data_filter_denied"
	// dropBusy: the caller already had Options.MaxRunningPerCaller slow
	// actions running (answered with status 1, and counted here).
	dropBusy = "busy"
	// dropSender: the request's sender is not its signer's certname.
	dropSender = "sender_mismatch"
	// dropBadID: an id longer than protocol.MaxRequestIDLength or with
	// characters outside [A-Za-z0-9_-].
	dropBadID = "bad_id"
	// dropReplayFull: the caller's share of the replay cache, or the whole
	// cache, is full until older ids expire.
	dropReplayFull = "replay_cache_full"
	// dropReplayStore: the id could not be written to the replay file.
	dropReplayStore = "replay_store_failed"
)

var dropReasons = []string{dropOversized, dropMalformed, dropProtocol, dropSignature, dropCert,
	dropCaller, dropExpired, dropFuture, dropReplay, dropCollective, dropReplyTo, dropTTL,
	dropBadID, dropReplayFull, dropReplayStore, dropSender, dropDataDenied, dropBusy}

// DropReasons lists every reason a message is dropped for, as
// Stats.Dropped and the request-dropped log records name them.
func DropReasons() []string { return append([]string(nil), dropReasons...) }

// Stats are the daemon's request counters. The field names follow
// MCollective's daemon_stats where one exists.
type Stats struct {
	start        time.Time
	Total        atomic.Int64 // messages received
	Validated    atomic.Int64 // passed signature, certificate and caller checks
	Unvalidated  atomic.Int64 // failed them
	Filtered     atomic.Int64 // did not match this node's filter
	Passed       atomic.Int64 // matched and were dispatched
	Denied       atomic.Int64 // refused by ActionPolicy
	Replies      atomic.Int64 // replies sent
	Timeouts     atomic.Int64 // actions that hit their timeout
	TTLExpired   atomic.Int64 // requests too old (or too far in the future)
	AuditErrors  atomic.Int64 // audit records that could not be written
	PublishError atomic.Int64 // replies that could not be published
	drops        map[string]*atomic.Int64
}

func newStats() *Stats {
	s := &Stats{start: time.Now(), drops: map[string]*atomic.Int64{}}
	for _, r := range dropReasons {
		s.drops[r] = new(atomic.Int64)
	}
	return s
}

func (s *Stats) drop(reason string) { s.drops[reason].Add(1) }

// Dropped returns the count of messages dropped for a reason.
func (s *Stats) Dropped(reason string) int64 {
	if c, ok := s.drops[reason]; ok {
		return c.Load()
	}
	return 0
}

// Snapshot returns the counters as a map, as rpcutil daemon_stats reports them.
func (s *Stats) Snapshot() map[string]any {
	drops := map[string]any{}
	for r, c := range s.drops {
		drops[r] = c.Load()
	}
	return map[string]any{
		"total":         s.Total.Load(),
		"validated":     s.Validated.Load(),
		"unvalidated":   s.Unvalidated.Load(),
		"filtered":      s.Filtered.Load(),
		"passed":        s.Passed.Load(),
		"denied":        s.Denied.Load(),
		"replies":       s.Replies.Load(),
		"timeouts":      s.Timeouts.Load(),
		"ttlexpired":    s.TTLExpired.Load(),
		"audit_errors":  s.AuditErrors.Load(),
		"publish_error": s.PublishError.Load(),
		"dropped":       drops,
		"starttime":     s.start.Unix(),
	}
}
