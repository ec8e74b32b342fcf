//go:build !linux

package reaper

import "log/slog"

// Groups is a no-op where process start times cannot be read from /proc:
// without them a recorded group id could name an unrelated process.
type Groups struct{}

// Open returns a record that records nothing.
func Open(string, *slog.Logger) (*Groups, error) { return &Groups{}, nil }

// Started does nothing on this platform.
func (*Groups) Started(int) {}

// Exited does nothing on this platform.
func (*Groups) Exited(int) {}
