//go:build !unix

package devcluster

// openFileLimit reports no limit where there is no RLIMIT_NOFILE.
func openFileLimit() (soft, hard int, ok bool) { return 0, 0, false }
