package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReplayCachePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "replay.seen")
	now := time.Unix(1_700_000_000, 0)
	c, err := openReplayCache(path, now, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.firstSeen("alice", "a1", now, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := c.firstSeen("alice", "short", now, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// The same id from another signer is another request.
	if err := c.firstSeen("bob", "a1", now, now.Add(time.Minute)); err != nil {
		t.Fatalf("bob's a1: %v", err)
	}
	// No close: as after kill -9. A torn last line is ignored.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("1799999999000000000 abc")
	f.Close()

	later := now.Add(10 * time.Second)
	c2, err := openReplayCache(path, later, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.firstSeen("alice", "a1", later, later.Add(time.Minute)); !errors.Is(err, errReplayed) {
		t.Fatalf("a1 after restart: %v, want errReplayed", err)
	}
	if err := c2.firstSeen("alice", "short", later, later.Add(time.Minute)); err != nil {
		t.Fatalf("expired id after restart: %v, want accepted", err)
	}
	if c2.len() != 3 {
		t.Errorf("len = %d, want 3 (alice a1, bob a1, alice short again)", c2.len())
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), " abc") || strings.Count(string(data), "\n") != 3 {
		t.Errorf("file not compacted at start:\n%s", data)
	}
	if err := c2.close(); err != nil {
		t.Fatal(err)
	}
}

func TestReplayCacheBounds(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := newReplayCache(5, 3)
	for i, id := range []string{"1", "2", "3"} {
		if err := c.firstSeen("mallory", id, now, now.Add(time.Hour)); err != nil {
			t.Fatalf("id %d: %v", i, err)
		}
	}
	if err := c.firstSeen("mallory", "4", now, now.Add(time.Hour)); !errors.Is(err, errCallerFull) {
		t.Fatalf("4th id of one caller: %v, want errCallerFull", err)
	}
	for _, id := range []string{"1", "2"} {
		if err := c.firstSeen("alice", id, now, now.Add(time.Hour)); err != nil {
			t.Fatalf("alice is refused because of mallory: %v", err)
		}
	}
	if err := c.firstSeen("carol", "1", now, now.Add(time.Hour)); !errors.Is(err, errCacheFull) {
		t.Fatalf("6th id: %v, want errCacheFull", err)
	}
	// Once ids expire there is room again, and a replay is still a replay
	// until then.
	if err := c.firstSeen("mallory", "1", now.Add(time.Minute), now.Add(time.Hour)); !errors.Is(err, errReplayed) {
		t.Fatalf("replay while full: %v, want errReplayed", err)
	}
	after := now.Add(2 * time.Hour)
	if err := c.firstSeen("mallory", "4", after, after.Add(time.Hour)); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if c.len() != 1 || len(c.callers) != 1 {
		t.Errorf("len %d, callers %d after the sweep; want 1, 1", c.len(), len(c.callers))
	}
}

func TestReplayCacheWriteFailureRefuses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "replay.seen")
	now := time.Unix(1_700_000_000, 0)
	c, err := openReplayCache(path, now, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	c.f.Close() // every later write fails
	if err := c.firstSeen("alice", "x", now, now.Add(time.Minute)); err == nil || errors.Is(err, errReplayed) {
		t.Fatalf("write failure: %v, want a refusal", err)
	}
	if c.len() != 0 {
		t.Errorf("an id that was not persisted is remembered in memory only")
	}
	// The failure is not sticky: the file is reopened for the next request.
	if err := c.firstSeen("alice", "y", now, now.Add(time.Minute)); err != nil {
		t.Fatalf("after a failed write: %v", err)
	}
	c2, err := openReplayCache(path, now, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.firstSeen("alice", "y", now, now.Add(time.Minute)); !errors.Is(err, errReplayed) {
		t.Fatalf("y after reopen: %v, want errReplayed", err)
	}
}

// BenchmarkReplayCache is the cost of remembering one request id, in memory
// only and persisted to a file (one write per id).
func BenchmarkReplayCache(b *testing.B) {
	now := time.Now()
	for _, file := range []bool{false, true} {
		name := "memory"
		if file {
			name = "file"
		}
		b.Run(name, func(b *testing.B) {
			ids := make([]string, b.N)
			for i := range ids {
				ids[i] = fmt.Sprintf("%032x", i)
			}
			c := newReplayCache(b.N+1, b.N+1)
			if file {
				var err error
				if c, err = openReplayCache(filepath.Join(b.TempDir(), "r"), now, b.N+1, b.N+1); err != nil {
					b.Fatal(err)
				}
				defer c.close()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := c.firstSeen("alice.mcollective", ids[i], now, now.Add(time.Hour)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
