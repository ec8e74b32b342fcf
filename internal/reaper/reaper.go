//go:build linux

// Package reaper records the process groups of a daemon's running actions in
// a file, so that a daemon started after its predecessor was killed (kill -9,
// OOM, a crash) kills the groups it left behind instead of letting them run
// past their timeout forever.
//
// Only groups recorded here are touched: a detached job, or anything else not
// started as a running action of this daemon, is never in the file. Each
// record holds the group leader's start time (from /proc), so a group id the
// kernel has since given to an unrelated process is left alone.
package reaper

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Groups is the record of running process groups. It is safe for concurrent
// use.
type Groups struct {
	path string
	log  *slog.Logger

	mu   sync.Mutex
	live map[int]uint64 // group id (= leader pid) -> leader start time
}

// Open reaps the groups recorded in path by a previous daemon and returns an
// empty record kept in path. logger may be nil.
func Open(path string, logger *slog.Logger) (*Groups, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	g := &Groups{path: path, log: logger, live: map[int]uint64{}}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("running actions record: %w", err)
	}
	if err := g.reap(); err != nil {
		return nil, err
	}
	return g, g.save()
}

// reap kills every recorded group whose leader is still the process that was
// recorded.
func (g *Groups) reap() error {
	f, err := os.Open(g.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("running actions record: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pgid, start, ok := parseLine(sc.Text())
		if !ok {
			continue
		}
		if now, err := StartTime(pgid); err != nil || now != start {
			continue // gone, or the id now belongs to another process
		}
		if err := syscall.Kill(-pgid, syscall.SIGKILL); err == nil {
			g.log.Warn("killed an action left running by a previous daemon", "pgid", pgid)
		}
	}
	return sc.Err()
}

func parseLine(s string) (pgid int, start uint64, ok bool) {
	a, b, found := strings.Cut(s, " ")
	if !found {
		return 0, 0, false
	}
	pgid, err1 := strconv.Atoi(a)
	start, err2 := strconv.ParseUint(b, 10, 64)
	return pgid, start, err1 == nil && err2 == nil && pgid > 1
}

// Started records the group led by pid (a child started with Setpgid).
func (g *Groups) Started(pid int) {
	start, err := StartTime(pid)
	if err != nil {
		// Already gone: nothing to reap later.
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.live[pid] = start
	if err := g.save(); err != nil {
		g.log.Error("recording a running action", "err", err)
	}
}

// Exited forgets the group led by pid.
func (g *Groups) Exited(pid int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.live[pid]; !ok {
		return
	}
	delete(g.live, pid)
	if err := g.save(); err != nil {
		g.log.Error("recording a finished action", "err", err)
	}
}

// save rewrites the file atomically; g.mu is held (or g is not shared yet).
func (g *Groups) save() error {
	ids := make([]int, 0, len(g.live))
	for id := range g.live {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "%d %d\n", id, g.live[id])
	}
	tmp := g.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, g.path)
}

// StartTime returns a process's start time in clock ticks since boot (field
// 22 of /proc/PID/stat), which tells a process from a later one given the
// same pid.
func StartTime(pid int) (uint64, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	fields := strings.Fields(string(data[i+1:]))
	// fields[0] is field 3 (state); start time is field 22.
	if len(fields) < 20 {
		return 0, errors.New("unexpected /proc stat format")
	}
	return strconv.ParseUint(fields[19], 10, 64)
}
