// Package quiesce stops the once-a-second background work that a node
// daemon's process would otherwise do while it waits for requests. A fleet
// of idle daemons should cost close to nothing: each periodic wake-up costs
// a context switch and a few system calls, on every host, forever.
//
// Two such timers come with the binary rather than with the daemon's own
// code, and only a process that is not a broker may switch them off:
//
//   - Go's runtime (1.25+) re-reads the CPU affinity and the cgroup CPU limit
//     every second to adjust GOMAXPROCS. Setting GOMAXPROCS explicitly stops
//     that; a node daemon is mostly idle and keeps the value it started with.
//   - nats-server's process-usage sampler (package server/pse) starts from an
//     init function in every process that links the broker, reads
//     /proc/self/stat and calls sysinfo every second, and feeds only the
//     broker's monitoring endpoint (/varz) and system-account statistics.
//     The binary is one, so the package is initialised in the daemon too.
package quiesce

import "runtime"

// NonBroker quiets a process that will never run the embedded broker (the
// node daemon). It must not be called in a process that runs a broker: the
// broker's monitoring would report no CPU usage.
func NonBroker() {
	// An explicit GOMAXPROCS (even the current value) ends the runtime's
	// periodic re-evaluation of it.
	runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	stopNATSSampler()
}
