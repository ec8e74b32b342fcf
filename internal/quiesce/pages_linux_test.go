package quiesce

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBinaryMappings(t *testing.T) {
	const maps = `00400000-00f2d000 r-xp 00000000 fe:00 9983115                            /usr/bin/mco
00f2d000-01a5b000 r--p 00b2d000 fe:00 9983115                            /usr/bin/mco
01a5b000-01b2c000 rw-p 0165b000 fe:00 9983115                            /usr/bin/mco
01b2c000-03b74000 rw-p 00000000 00:00 0
7f0000000000-7f0000001000 r--p 00000000 fe:00 9983116                    /usr/lib/other
7f0000001000-7f0000002000 r--s 00000000 fe:00 9983115                    /usr/bin/mco
7f0000002000-7f0000003000 r--p 00000000 fe:01 9983115                    /mnt/mco
7f0000003000-7f0000004000 r-xp 00001000 fe:00 9983115                    /usr/bin/mco (deleted)
garbage line
7ffdc0395000-7ffdc03b6000 rw-p 00000000 00:00 0                          [stack]
`
	tests := []struct {
		name         string
		major, minor uint32
		ino          uint64
		want         []mapping
	}{
		{"text, rodata and a replaced binary; not data, shared or other files", 0xfe, 0, 9983115, []mapping{
			{0x400000, 0xf2d000}, {0xf2d000, 0x1a5b000}, {0x7f0000003000, 0x7f0000004000},
		}},
		{"same inode on another device", 0xfe, 1, 9983115, []mapping{{0x7f0000002000, 0x7f0000003000}}},
		{"anonymous memory is never matched", 0, 0, 0, nil},
	}
	tests = append(tests, struct {
		name         string
		major, minor uint32
		ino          uint64
		want         []mapping
	}{"smaps: a read-only mapping with written (relocated) pages is left alone", 0xfe, 0, 9983115, []mapping{{0x400000, 0xf2d000}}})
	smaps := `00400000-00f2d000 r-xp 00000000 fe:00 9983115                            /usr/bin/mco
Rss:                2048 kB
Private_Dirty:       512 kB
Anonymous:             0 kB
00f2d000-01a5b000 r--p 00b2d000 fe:00 9983115                            /usr/bin/mco
Rss:                2048 kB
Anonymous:           120 kB
01a5b000-01b2c000 rw-p 0165b000 fe:00 9983115                            /usr/bin/mco
Anonymous:            64 kB
`
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := maps
			if strings.HasPrefix(tt.name, "smaps") {
				text = smaps
			}
			got := binaryMappings([]byte(text), tt.major, tt.minor, tt.ino)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(mapping{})); diff != "" {
				t.Errorf("binaryMappings (-want +got):\n%s", diff)
			}
		})
	}
}

// The test binary's own pages leave its RSS: what is resident afterwards
// is only what ran since (this test, the runtime).
func TestReleaseBinaryPagesShrinksRSS(t *testing.T) {
	before := exeRss(t)
	n, err := ReleaseBinaryPages()
	if err != nil {
		t.Fatal(err)
	}
	after := exeRss(t)
	if n == 0 {
		t.Fatal("no mapping of the executable was advised")
	}
	if after >= before {
		t.Errorf("resident pages of the executable: %d kB before, %d kB after; want fewer", before, after)
	}
	t.Logf("executable resident: %d kB before, %d kB after (%d bytes advised)", before, after, n)
}

// exeRss sums the Rss of the read-only mappings of the test executable.
func exeRss(t *testing.T) int {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	total, in := 0, false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 6 && strings.Contains(f[0], "-"):
			in = f[1][1] != 'w' && strings.HasPrefix(strings.Join(f[5:], " "), exe)
		case in && len(f) >= 2 && f[0] == "Rss:":
			kb, _ := strconv.Atoi(f[1])
			total += kb
		}
	}
	return total
}

// TestReleaseInPIE: in a position-independent binary the loader writes the
// relocated pointers of pages that are read-only afterwards; releasing the
// binary's pages must keep them, or the next interface call or map use
// crashes. The test builds and runs itself as a PIE.
func TestReleaseInPIE(t *testing.T) {
	if os.Getenv("MCO_QUIESCE_PIE") == "1" {
		t.Skip("running as the PIE child: TestReleaseThenRun is the test")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build a PIE: %v", err)
	}
	cmd := exec.Command(goBin, "test", "-count=1", "-buildmode=pie", "-run", "^TestReleaseThenRun$", ".")
	cmd.Env = append(os.Environ(), "MCO_QUIESCE_PIE=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as a PIE: %v\n%s", err, out)
	}
}

type namer interface{ name() string }
type named struct{ s string }

func (n named) name() string { return n.s }

// TestReleaseThenRun uses what the binary's relocated read-only data holds
// (itabs, type descriptors, map types) after a release.
func TestReleaseThenRun(t *testing.T) {
	if _, err := ReleaseBinaryPages(); err != nil {
		t.Fatal(err)
	}
	var n namer = named{"after"}
	m := map[string]int{n.name(): 1}
	if got := fmt.Sprint(m, reflect.TypeOf(n)); got != "map[after:1] quiesce.named" {
		t.Fatalf("after the release: %q", got)
	}
}
