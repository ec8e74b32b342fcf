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
	return Within(Deadline, cond)
}

// Within is Wait with an explicit deadline, for waits on real external tools
// (a Puppet run, `puppet config print`) that a loaded machine can stretch
// past Deadline.
func Within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
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
	UntilWithin(t, Deadline, what, cond)
}

// UntilWithin is Until with an explicit deadline (see Within).
func UntilWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Within(d, cond) {
		t.Fatalf("gave up waiting for %s", what)
	}
}
