package quiesce

import (
	"sync/atomic"
	"unsafe"

	// Linked for its sampler, which stopNATSSampler ends.
	_ "github.com/nats-io/nats-server/v2/server/pse"
)

// procStatFile is the path nats-server's Linux sampler reads. The sampler
// (pse.periodic) re-arms its one-second timer only after a successful read,
// so an empty path ends it at its next tick, and pse.ProcUsage reports an
// error from then on. nats-server exports no way to stop it; a rename of the
// variable fails the build loudly rather than silently keeping the timer.
//
//go:linkname procStatFile github.com/nats-io/nats-server/v2/server/pse.procStatFile
var procStatFile string

// stopNATSSampler empties procStatFile. The sampler reads the variable from
// its timer goroutine, which nothing lets us synchronise with, so the write
// stores only the string's length, as one atomic machine word: a concurrent
// reader sees the old path or an empty string, never a torn mix of the two.
func stopNATSSampler() {
	header := (*struct {
		data unsafe.Pointer
		len  uintptr
	})(unsafe.Pointer(&procStatFile))
	atomic.StoreUintptr(&header.len, 0)
}
