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

// TestFacterReleaseOnThisMachine compares with the files Facter reads, on the
// distributions whose os-release VERSION_ID is shorter than Facter's value.
func TestFacterReleaseOnThisMachine(t *testing.T) {
	f := collectBuiltins("", slog.New(slog.DiscardHandler))
	want := ""
	switch f["operatingsystem"] {
	case "Debian":
		want = firstLine("/etc/debian_version")
	case "CentOS", "RedHat", "Rocky", "AlmaLinux":
		want = releaseNumber(firstLine("/etc/redhat-release"))
	}
	if want == "" || want[0] < '0' || want[0] > '9' {
		return // another distribution: TestOSFacts covers the rules
	}
	if f["operatingsystemrelease"] != want {
		t.Errorf("operatingsystemrelease = %v, want %q as Facter reports", f["operatingsystemrelease"], want)
	}
	if got, _ := Lookup(f, "os.release.full"); got != want {
		t.Errorf("os.release.full = %v, want %q", got, want)
	}
}
