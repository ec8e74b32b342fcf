package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/marionette/mco/internal/registration"
	"github.com/marionette/mco/protocol"
)

// TestPrintNodes: silence is judged against --max-age when given, else
// against three of each node's own intervals, else ten minutes.
func TestPrintNodes(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	rec := func(id string, interval int64, ago time.Duration) *registration.Record {
		return &registration.Record{
			Registration: protocol.Registration{Identity: id, Agents: []string{"rpcutil", "package"}, Version: "0.1.0", Interval: interval},
			LastSeen:     now.Add(-ago),
		}
	}
	recs := []*registration.Record{
		rec("fresh.example.com", 60, time.Minute),
		rec("late.example.com", 60, 4*time.Minute),
		rec("quiet.example.com", 0, 9*time.Minute),
		rec("gone.example.com", 0, 11*time.Minute),
	}
	tests := []struct {
		maxAge time.Duration
		silent []string
	}{
		{0, []string{"late.example.com", "gone.example.com"}},
		{2 * time.Minute, []string{"late.example.com", "quiet.example.com", "gone.example.com"}},
		{time.Hour, nil},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		if err := printNodes(&App{Stdout: &out}, recs, tt.maxAge, false, now); err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(out.String(), "\n") {
			id, _, _ := strings.Cut(line, " ")
			if !strings.HasSuffix(id, ".example.com") {
				continue
			}
			want := contains(tt.silent, id)
			if got := strings.HasSuffix(strings.TrimSpace(line), "SILENT"); got != want {
				t.Errorf("max-age %s: %q: silent %v, want %v", tt.maxAge, line, got, want)
			}
			if !strings.Contains(line, " 2 ") {
				t.Errorf("line %q does not show 2 agents", line)
			}
		}
		if !strings.Contains(out.String(), "4 nodes, ") {
			t.Errorf("no summary line:\n%s", out.String())
		}
	}
}
