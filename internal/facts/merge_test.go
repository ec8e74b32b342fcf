package facts

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMergeReplacesTopLevelFactsAndIsPure(t *testing.T) {
	base := map[string]any{
		"os":   map[string]any{"family": "Debian", "release": map[string]any{"major": "12", "minor": "5"}},
		"list": []any{"a", "b"},
		"keep": "base",
	}
	top := map[string]any{
		"os":   map[string]any{"release": map[string]any{"major": "13"}},
		"list": []any{"c"},
		"new":  int64(1),
	}
	baseBefore := cmp.Diff(nil, base)
	topBefore := cmp.Diff(nil, top)

	got := merge(base, top)
	want := map[string]any{
		"os":   map[string]any{"release": map[string]any{"major": "13"}}, // replaced whole: no minor "5" left over
		"list": []any{"c"},                                               // lists are replaced, not concatenated
		"keep": "base",
		"new":  int64(1),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("merge (-want +got):\n%s", diff)
	}
	if cmp.Diff(nil, base) != baseBefore || cmp.Diff(nil, top) != topBefore {
		t.Error("merge modified its inputs")
	}

	// A scalar replaces a map and a map replaces a scalar.
	got = merge(map[string]any{"a": map[string]any{"b": 1}, "c": "x"}, map[string]any{"a": "flat", "c": map[string]any{"d": 2}})
	if diff := cmp.Diff(map[string]any{"a": "flat", "c": map[string]any{"d": 2}}, got); diff != "" {
		t.Errorf("type change (-want +got):\n%s", diff)
	}
}

func TestLookup(t *testing.T) {
	facts := map[string]any{
		"os": map[string]any{
			"family":  "Debian",
			"release": map[string]any{"major": "12"},
		},
		"ipaddresses": []any{"10.0.0.1", "10.0.0.2"},
		"disks":       []any{map[string]any{"name": "sda", "size": int64(100)}},
		"ssh.rsa.key": "AAAA",
		"nothing":     nil,
		"flag":        false,
	}
	tests := []struct {
		path   string
		want   any
		wantOK bool
	}{
		{"os.family", "Debian", true},
		{"os.release.major", "12", true},
		{"os.release", map[string]any{"major": "12"}, true},
		{"ipaddresses.1", "10.0.0.2", true},
		{"ipaddresses", []any{"10.0.0.1", "10.0.0.2"}, true},
		{"disks.0.name", "sda", true},
		{"disks.0.size", int64(100), true},
		{"ssh.rsa.key", "AAAA", true},
		{"nothing", nil, true},
		{"flag", false, true},
		{"missing", nil, false},
		{"os.missing", nil, false},
		{"os.family.deeper", nil, false},
		{"ipaddresses.2", nil, false},
		{"ipaddresses.-1", nil, false},
		{"ipaddresses.x", nil, false},
		{"disks.0.name.x", nil, false},
		{"", nil, false},
		{"os.", nil, false},
		{".os", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, ok := Lookup(facts, tt.path)
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("value (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSameIgnoringVolatile(t *testing.T) {
	a := map[string]any{"uptime_seconds": int64(1), "memory": map[string]any{"total_mb": int64(8), "free_mb": int64(3)}, "x": "1"}
	tests := []struct {
		name string
		b    map[string]any
		want bool
	}{
		{"only volatile differ", map[string]any{"uptime_seconds": int64(99), "memory": map[string]any{"total_mb": int64(8), "free_mb": int64(1)}, "x": "1"}, true},
		{"total memory differs", map[string]any{"uptime_seconds": int64(1), "memory": map[string]any{"total_mb": int64(16), "free_mb": int64(3)}, "x": "1"}, false},
		{"other fact differs", map[string]any{"uptime_seconds": int64(1), "memory": map[string]any{"total_mb": int64(8), "free_mb": int64(3)}, "x": "2"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameIgnoringVolatile(a, tt.b); got != tt.want {
				t.Errorf("sameIgnoringVolatile = %v, want %v", got, tt.want)
			}
		})
	}
}
