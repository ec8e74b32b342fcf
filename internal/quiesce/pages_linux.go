package quiesce

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ReleaseBinaryPages hands back the pages of the process's own executable
// that are mapped read-only (machine code, read-only data, the function
// tables) and returns how many bytes of mappings it advised.
//
// Most of those pages were touched once, at start-up: the package
// initialisers of everything linked into the one mco binary (the broker,
// the client commands), the configuration and certificate parsers, the
// TLS handshake, with the kernel mapping up to 64 KB around each fault. A
// lone daemon keeps them resident for ever (about 15 MB) although an idle
// node needs almost none of them and a request needs only the pages of
// its own path, which fault back in from the page cache (or the disk) the
// first time they run again.
//
// MADV_PAGEOUT reclaims the pages nothing else maps: they leave the page
// cache too, so the host gets the memory back (the kernel does it only for
// a process that could open the binary for writing, such as root, and
// from Linux 5.4). MADV_DONTNEED then unmaps whatever is left (pages
// another process maps, or a kernel without MADV_PAGEOUT): they stay in
// the page cache but stop counting in this process's RSS and PSS. Both
// leave the mappings valid; only read-only mappings none of whose pages
// were ever written are advised, so no data is lost.
//
// "Read-only" is not enough: in a position-independent binary (go build
// -buildmode=pie, as several distributions package Go programs) the
// dynamic loader writes the relocated pointers of the RELRO segment
// (type descriptors, itabs, function tables) and then makes it read-only.
// Those pages are the process's private copies; MADV_DONTNEED would drop
// them and the next access would read the unrelocated file contents and
// crash. Such a mapping counts the copies as Anonymous in /proc/self/smaps,
// and is left alone. (Private_Dirty is no sign: it also counts page-cache
// pages of a binary written moments ago and not yet flushed.)
func ReleaseBinaryPages() (int64, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		return 0, fmt.Errorf("releasing the binary's pages: %w", err)
	}
	maps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, fmt.Errorf("releasing the binary's pages: %w", err)
	}
	var total int64
	var errs []error
	for _, m := range binaryMappings(maps, unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino) {
		length := m.end - m.start
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, m.start, length, unix.MADV_PAGEOUT); e != 0 && e != unix.EINVAL {
			errs = append(errs, fmt.Errorf("madvise(%#x, %d, MADV_PAGEOUT): %w", m.start, length, e))
		}
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, m.start, length, unix.MADV_DONTNEED); e != 0 {
			errs = append(errs, fmt.Errorf("madvise(%#x, %d, MADV_DONTNEED): %w", m.start, length, e))
			continue
		}
		total += int64(length)
	}
	if err := errors.Join(errs...); err != nil {
		return total, fmt.Errorf("releasing the binary's pages: %w", err)
	}
	return total, nil
}

// mapping is one line of /proc/self/maps: [start, end).
type mapping struct{ start, end uintptr }

// binaryMappings are the read-only, private, never-written mappings of the
// file with the given device and inode in a /proc/PID/smaps text (or a
// /proc/PID/maps one, which has no per-mapping counters: every mapping is
// then taken as never written). A mapping with any Anonymous page holds
// data that exists nowhere else (see ReleaseBinaryPages) and is not
// returned. The file is matched by device
// and inode rather than by path: a binary replaced on disk (a package
// upgrade) shows as "path (deleted)".
func binaryMappings(maps []byte, major, minor uint32, ino uint64) []mapping {
	var all []mapping
	var written []bool
	cur := -1 // index in all of the mapping whose counters follow
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		// start-end perms offset major:minor inode [path], then, in
		// smaps, "Key: value kB" lines about it.
		f := bytes.Fields(sc.Bytes())
		if len(f) >= 2 && bytes.HasSuffix(f[0], []byte(":")) {
			if cur >= 0 && string(f[0]) == "Anonymous:" && string(f[1]) != "0" {
				written[cur] = true
			}
			continue
		}
		cur = -1
		if len(f) < 5 || len(f[1]) != 4 || f[1][1] == 'w' || f[1][3] != 'p' {
			continue
		}
		if n, err := strconv.ParseUint(string(f[4]), 10, 64); err != nil || n != ino || n == 0 {
			continue
		}
		maj, mnr, ok := bytes.Cut(f[3], []byte(":"))
		if !ok || !hexIs(maj, major) || !hexIs(mnr, minor) {
			continue
		}
		lo, hi, ok := bytes.Cut(f[0], []byte("-"))
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(string(lo), 16, 64)
		end, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		cur = len(all)
		all = append(all, mapping{uintptr(start), uintptr(end)})
		written = append(written, false)
	}
	var out []mapping
	for i, m := range all {
		if !written[i] {
			out = append(out, m)
		}
	}
	return out
}

func hexIs(b []byte, want uint32) bool {
	n, err := strconv.ParseUint(string(b), 16, 32)
	return err == nil && uint32(n) == want
}
