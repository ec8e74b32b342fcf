package poll

import (
	"testing"
	"time"
)

func TestWithin(t *testing.T) {
	tests := []struct {
		name    string
		within  time.Duration
		holdsAt int // the call on which cond first holds; 0: never
		want    bool
	}{
		{"holds at once", Deadline, 1, true},
		{"holds after backing off", Deadline, 5, true},
		{"never holds", 20 * time.Millisecond, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			got := Within(tt.within, func() bool {
				calls++
				return tt.holdsAt != 0 && calls >= tt.holdsAt
			})
			if got != tt.want {
				t.Fatalf("Within = %v after %d calls, want %v", got, calls, tt.want)
			}
			if tt.want && calls != tt.holdsAt {
				t.Fatalf("cond called %d times, want %d (polling stops once it holds)", calls, tt.holdsAt)
			}
		})
	}
}
