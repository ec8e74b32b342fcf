package logtest

import (
	"log/slog"
	"sync"
	"testing"
)

// TestBufferConcurrentWrites: lines logged from many goroutines at once
// are all kept whole (run with -race to check the locking).
func TestBufferConcurrentWrites(t *testing.T) {
	var b Buffer
	log := slog.New(slog.NewTextHandler(&b, nil))
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				log.Info("line", "k", "v")
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if n := b.Count("msg=line k=v\n"); n != 1000 {
		t.Fatalf("%d whole lines, want 1000:\n%s", n, b.String())
	}
}
