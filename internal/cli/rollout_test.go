package cli

import (
	"strings"
	"testing"
	"time"
)

func TestRolloutFlagsParse(t *testing.T) {
	tests := []struct {
		name    string
		flags   rolloutFlags
		wantErr string // empty: valid
		batched bool
		limit   string
	}{
		{name: "nothing", flags: rolloutFlags{}},
		{name: "batch", flags: rolloutFlags{batch: "2"}, batched: true},
		{name: "batch percent", flags: rolloutFlags{batch: "50%", batchSleep: time.Second, maxFailures: "0"}, batched: true},
		{name: "batch by", flags: rolloutFlags{batchBy: "hagroup", maxFailures: "10%"}, batched: true},
		{name: "limit", flags: rolloutFlags{limit: "3", limitSeed: "7"}, limit: "3"},
		{name: "one", flags: rolloutFlags{one: true}, limit: "1"},
		{name: "batch 0", flags: rolloutFlags{batch: "0"}, wantErr: "--batch 0"},
		{name: "batch 0%", flags: rolloutFlags{batch: "0%"}, wantErr: "--batch 0%"},
		{name: "batch 150%", flags: rolloutFlags{batch: "150%"}, wantErr: "--batch"},
		{name: "batch abc", flags: rolloutFlags{batch: "abc"}, wantErr: "--batch"},
		{name: "limit -1", flags: rolloutFlags{limit: "-1"}, wantErr: "--limit"},
		{name: "limit 0", flags: rolloutFlags{limit: "0"}, wantErr: "--limit"},
		{name: "max failures x", flags: rolloutFlags{batch: "1", maxFailures: "x"}, wantErr: "--max-failures"},
		{name: "max failures alone", flags: rolloutFlags{maxFailures: "1"}, wantErr: "--max-failures"},
		{name: "sleep alone", flags: rolloutFlags{batchSleep: time.Second}, wantErr: "--batch-sleep"},
		{name: "negative sleep", flags: rolloutFlags{batch: "1", batchSleep: -time.Second}, wantErr: "--batch-sleep"},
		{name: "seed alone", flags: rolloutFlags{limitSeed: "1"}, wantErr: "--limit-seed"},
		{name: "seed not a number", flags: rolloutFlags{limit: "1", limitSeed: "x"}, wantErr: "--limit-seed"},
		{name: "one and limit", flags: rolloutFlags{one: true, limit: "2"}, wantErr: "-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ro, err := tt.flags.parse()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parse() = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ro.batched() != tt.batched {
				t.Errorf("batched = %v, want %v", ro.batched(), tt.batched)
			}
			got := ""
			if ro.limit != nil {
				got = ro.limit.String()
			}
			if got != tt.limit {
				t.Errorf("limit %q, want %q", got, tt.limit)
			}
		})
	}
}

func TestNearestFact(t *testing.T) {
	names := []string{"hagroup", "os.family", "role"}
	for want, got := range map[string]string{"hagrup": "hagroup", "os.famly": "os.family", "rol": "role", "datacenter": ""} {
		if n := nearest(want, names); n != got {
			t.Errorf("nearest(%q) = %q, want %q", want, n, got)
		}
	}
}
