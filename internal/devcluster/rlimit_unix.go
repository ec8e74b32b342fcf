//go:build unix

package devcluster

import "syscall"

// openFileLimit returns RLIMIT_NOFILE's soft and hard values.
func openFileLimit() (soft, hard int, ok bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, false
	}
	const most = 1 << 30 // RLIM_INFINITY and other huge values
	return int(min(lim.Cur, most)), int(min(lim.Max, most)), true
}
