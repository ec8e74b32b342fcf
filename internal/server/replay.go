package server

import (
	"sync"
	"time"
)

// replayCache remembers request ids until their validity ends, so that a
// second delivery of the same request — a replay, or the directed copy of a
// request already received by broadcast — is refused.
type replayCache struct {
	mu        sync.Mutex
	seen      map[string]time.Time // id -> when it may be forgotten
	nextSweep time.Time
}

func newReplayCache() *replayCache {
	return &replayCache{seen: make(map[string]time.Time)}
}

// firstSeen records id until forget and reports whether it was new.
func (c *replayCache) firstSeen(id string, now, forget time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if until, ok := c.seen[id]; ok && now.Before(until) {
		return false
	}
	c.seen[id] = forget
	// Sweep at most once a second: amortised O(1) per request.
	if now.After(c.nextSweep) {
		for k, until := range c.seen {
			if !now.Before(until) {
				delete(c.seen, k)
			}
		}
		c.nextSweep = now.Add(time.Second)
	}
	return true
}

func (c *replayCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}
