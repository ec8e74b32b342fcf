// Package poll is the one way tests wait for something that happens
// asynchronously (a reply dropped, a file reloaded, a connection closed):
// poll a condition, starting fast and backing off. The deadline only bounds a
// hung test; it is generous because the machine may be loaded, and no test
// asserts how long anything took.
package poll

import (
	"testing"
	"time"
)

// Deadline bounds every wait.
const Deadline = 30 * time.Second

// Wait polls cond until it holds and reports whether it did before the
// deadline.
func Wait(cond func() bool) bool {
	deadline := time.Now().Add(Deadline)
	interval := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
		interval = min(2*interval, 100*time.Millisecond)
	}
	return true
}

// Until is Wait that fails t, naming what it waited for, when the deadline
// passes.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !Wait(cond) {
		t.Fatalf("gave up waiting for %s", what)
	}
}
