//go:build !linux

package quiesce

// stopNATSSampler does nothing: the BSDs, Solaris and Windows sample on
// demand (ps, sysctl, the Windows API) rather than on a timer; the Darwin
// sampler has a timer this package cannot reach.
func stopNATSSampler() {}
