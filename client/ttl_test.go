package client

import (
	"testing"
	"time"
)

func TestTTLSecondsRoundsUp(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want int64
	}{{time.Second, 1}, {1500 * time.Millisecond, 2}, {time.Minute, 60}, {time.Millisecond, 1}} {
		if got := ttlSeconds(tc.in); got != tc.want {
			t.Errorf("ttlSeconds(%s) = %d, want %d", tc.in, got, tc.want)
		}
	}
}
