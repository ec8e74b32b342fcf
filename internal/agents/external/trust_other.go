//go:build !unix

package external

// checkTrusted accepts every file: ownership and group/other write bits are
// unix notions, and external agents are supported on unix only.
func checkTrusted(string) error { return nil }
