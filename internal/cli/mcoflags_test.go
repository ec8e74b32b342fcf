package cli

import (
	"testing"
	"time"
)

func TestSecondsFlag(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "10", want: 10 * time.Second},
		{in: "2.5", want: 2500 * time.Millisecond},
		{in: "0", want: 0},
		{in: "1m30s", want: 90 * time.Second},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: " 3 ", want: 3 * time.Second},
		{in: "-1", bad: true},
		{in: "soon", bad: true},
		{in: "1e300", bad: true},
	}
	for _, tt := range tests {
		var d time.Duration
		err := seconds{&d}.Set(tt.in)
		if (err != nil) != tt.bad || (!tt.bad && d != tt.want) {
			t.Errorf("Set(%q) = %v, %v; want %v (error: %v)", tt.in, d, err, tt.want, tt.bad)
		}
	}
}

func TestMCollectiveAliases(t *testing.T) {
	for _, tt := range []struct {
		name          string
		agentIsTarget bool
		want          string
	}{
		{"wf", false, "fact"}, {"with-fact", false, "fact"}, {"wc", false, "class"}, {"with-class", false, "class"},
		{"wi", false, "identity"}, {"with-identity", false, "identity"}, {"wa", false, "with-agent"},
		{"agent", false, "with-agent"}, {"agent", true, "agent"}, {"dt", false, "discovery-timeout"},
		{"np", false, "no-progress"}, {"nr", false, "no-results"}, {"ln", false, "limit"},
		{"limit-nodes", false, "limit"}, {"disc-method", false, "dm"}, {"do", false, "discovery-options"},
		{"argument", true, "arg"}, {"timeout", false, "timeout"},
	} {
		if got := mcollectiveAlias(tt.name, tt.agentIsTarget); got != tt.want {
			t.Errorf("alias(%q, %v) = %q, want %q", tt.name, tt.agentIsTarget, got, tt.want)
		}
	}
}
