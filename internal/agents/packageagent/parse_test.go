package packageagent

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestParseDpkgList(t *testing.T) {
	out := "bash\t5.2.15-2+b8\tamd64\tinstall ok installed\n" +
		"libc6\t2.36-9\ti386\tdeinstall ok config-files\n" +
		"vim\t2:9.0.1378-2\tamd64\tinstall ok installed\n" +
		"foo\t\t\tunknown ok not-installed\n"
	got, err := parseDpkgList(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{
		{Name: "bash", Ensure: "5.2.15-2+b8", Epoch: "0", Version: "5.2.15", Release: "2+b8", Arch: "amd64"},
		{Name: "libc6", Ensure: Absent, Arch: "i386"},
		{Name: "vim", Ensure: "2:9.0.1378-2", Epoch: "2", Version: "9.0.1378", Release: "2", Arch: "amd64"},
		{Name: "foo", Ensure: Purged},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := parseDpkgList("bash 5.2\n"); err == nil {
		t.Error("malformed line accepted")
	}

	// With multiarch the installed entry wins over a leftover one.
	p, err := parseDpkgStatus("libc6", "libc6\t2.36-9\ti386\tdeinstall ok config-files\nlibc6\t2.36-9\tamd64\tinstall ok installed\n")
	if err != nil || p.Arch != "amd64" || p.Ensure != "2.36-9" {
		t.Errorf("parseDpkgStatus = %+v, %v", p, err)
	}
}

func TestSplitDebianVersion(t *testing.T) {
	tests := []struct{ in, epoch, version, release string }{
		{"1.0", "0", "1.0", ""},
		{"1.0-1", "0", "1.0", "1"},
		{"1:2.3-4-5", "1", "2.3-4", "5"},
		{"2:9.0.1378-2", "2", "9.0.1378", "2"},
	}
	for _, tt := range tests {
		e, v, r := splitDebianVersion(tt.in)
		if e != tt.epoch || v != tt.version || r != tt.release {
			t.Errorf("splitDebianVersion(%q) = %q %q %q", tt.in, e, v, r)
		}
	}
}

func TestParseAptSimulation(t *testing.T) {
	out := `Reading package lists...
Inst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.14/oldstable [amd64])
Conf bash (5.2.15-2+b13 Debian:12.14/oldstable [amd64])
Inst libnew (1.0-1 Debian-Security:12/stable-security [amd64])
`
	want := []Update{
		{Package: "bash", Version: "5.2.15-2+b13", Repo: "Debian:12.14/oldstable"},
		{Package: "libnew", Version: "1.0-1", Repo: "Debian-Security:12/stable-security"},
	}
	if diff := cmp.Diff(want, parseAptSimulation(out)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseRPMList(t *testing.T) {
	got, err := parseRPMList("bash\t(none)\t5.1.8\t9.el9\tx86_64\nperl-Time\t1\t1.9\t2.el9\tnoarch\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{
		{Name: "bash", Ensure: "5.1.8-9.el9", Epoch: "0", Version: "5.1.8", Release: "9.el9", Arch: "x86_64"},
		{Name: "perl-Time", Ensure: "1:1.9-2.el9", Epoch: "1", Version: "1.9", Release: "2.el9", Arch: "noarch"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseYumCheckUpdate(t *testing.T) {
	out := `Last metadata expiration check: 0:12:01 ago on Mon 01 Jan 2024.

bash.x86_64                      5.1.8-9.el9                   baseos
a-very-long-package-name-that-wraps.noarch
                                 2.0-1.el9                     appstream
Obsoleting Packages
grub2-tools.x86_64               1:2.06-70.el9                 baseos
`
	want := []Update{
		{Package: "bash.x86_64", Version: "5.1.8-9.el9", Repo: "baseos"},
		{Package: "a-very-long-package-name-that-wraps.noarch", Version: "2.0-1.el9", Repo: "appstream"},
	}
	if diff := cmp.Diff(want, parseYumCheckUpdate(out)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestCommandError(t *testing.T) {
	err := commandError("apt-get install", Result{Output: "Reading...\nE: Unable to locate package nope\n", ExitCode: 100})
	want := "apt-get install failed with exit code 100: E: Unable to locate package nope"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
	if errors.Unwrap(err) != nil {
		t.Errorf("unexpected wrapped error")
	}
}
