package natstest

import (
	"fmt"
	"slices"
	"testing"
)

// TestMeshRoutes: every member routes to each other member's port, in the
// order named, and never to itself.
func TestMeshRoutes(t *testing.T) {
	ports, routes := MeshRoutes(t, "a", "b", "c")
	url := func(n string) string { return fmt.Sprintf("nats-route://127.0.0.1:%d", ports[n]) }
	tests := []struct {
		name string
		want []string
	}{
		{"a", []string{url("b"), url("c")}},
		{"b", []string{url("a"), url("c")}},
		{"c", []string{url("a"), url("b")}},
	}
	for _, tt := range tests {
		if ports[tt.name] <= 0 {
			t.Errorf("%s: port %d", tt.name, ports[tt.name])
		}
		if !slices.Equal(routes[tt.name], tt.want) {
			t.Errorf("%s routes %v, want %v", tt.name, routes[tt.name], tt.want)
		}
	}
}
