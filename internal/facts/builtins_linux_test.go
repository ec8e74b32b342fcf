package facts

import (
	"log/slog"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBuiltinsOnLinux(t *testing.T) {
	f := collectBuiltins("1.2.3", slog.New(slog.DiscardHandler))
	for _, path := range []string{
		"os.family", "os.name", "operatingsystem", "osfamily",
		"kernel", "kernelrelease", "architecture", "hardwaremodel",
		"hostname", "fqdn", "processorcount", "memorysize_mb", "memory.total_mb",
		"memory.free_mb", "uptime_seconds", "ipaddresses",
	} {
		if _, ok := Lookup(f, path); !ok {
			t.Errorf("built-in fact %q is missing", path)
		}
	}
	if f["kernel"] != "Linux" {
		t.Errorf("kernel = %v, want Linux", f["kernel"])
	}
	if f["processorcount"] != int64(runtime.NumCPU()) {
		t.Errorf("processorcount = %v, want %d", f["processorcount"], runtime.NumCPU())
	}
	if f["mco_version"] != "1.2.3" {
		t.Errorf("mco_version = %v, want 1.2.3", f["mco_version"])
	}
	if f["architecture"] != runtime.GOARCH {
		t.Errorf("architecture = %v, want %s", f["architecture"], runtime.GOARCH)
	}
	// Built-ins must already use the types files are normalized to, so that
	// filters compare them the same way.
	n, err := normalize(f, "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(n, any(f)); diff != "" {
		t.Errorf("built-ins are not normalized (-normalized +built-in):\n%s", diff)
	}
}
