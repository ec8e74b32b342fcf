package quiesce

import (
	"bufio"
	"bytes"
	"os"
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
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := binaryMappings([]byte(maps), tt.major, tt.minor, tt.ino)
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
