package quiesce

import (
	"runtime"
	"testing"

	"github.com/nats-io/nats-server/v2/server/pse"
)

// The sampler is observable through pse.ProcUsage, which reads the same
// path: once stopped, it fails instead of reporting this process's usage.
func TestNonBrokerStopsTheNATSSampler(t *testing.T) {
	var pcpu float64
	var rss, vss int64
	if err := pse.ProcUsage(&pcpu, &rss, &vss); err != nil || rss <= 0 {
		t.Fatalf("before: ProcUsage = %v (rss %d), want this process's usage", err, rss)
	}
	procs := runtime.GOMAXPROCS(0)
	NonBroker()
	if err := pse.ProcUsage(&pcpu, &rss, &vss); err == nil {
		t.Fatal("after NonBroker: ProcUsage still reads /proc/self/stat; the sampler would keep its timer")
	}
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Errorf("GOMAXPROCS changed from %d to %d; it should only be fixed", procs, got)
	}
}
