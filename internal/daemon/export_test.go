package daemon

import "time"

// SetReleaseDelays shortens SettleDelay and QuietRelease for a test.
func SetReleaseDelays(d *Daemon, settle, quiet time.Duration) {
	d.settleDelay, d.quietRelease = settle, quiet
}

// ReleasedMessage is the debug line logged at each release.
const ReleasedMessage = releasedMessage
