package devcluster

import "fmt"

// NodesPerConnection is how many emulated nodes share one broker connection.
// Each node keeps its own certificate, signatures and subscriptions; only
// the TCP connection (two descriptors in this process: the node's end and
// the broker's) is shared, so that 10,000 nodes fit a 20,000 open-file limit
// with audit logs on.
const NodesPerConnection = 64

// descriptorsBase is what the process holds besides the nodes: the broker's
// listener, the client's connection, logs, the Go runtime's poller.
const descriptorsBase = 64

// Descriptors is how many open files a cluster of nodes needs, audit logs
// (one file per node) included or not.
func Descriptors(nodes int, audit bool) int {
	conns := (nodes + NodesPerConnection - 1) / NodesPerConnection
	n := descriptorsBase + 2*conns
	if audit {
		n += nodes
	}
	return n
}

// MaxNodes is the largest cluster that fits limit open files.
func MaxNodes(limit int, audit bool) int {
	lo, hi := 0, limit*NodesPerConnection
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if Descriptors(mid, audit) <= limit {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// CheckDescriptors refuses, before anything starts, a cluster that would
// run out of file descriptors half-way (and fail with thousands of "too many
// open files" errors). The Go runtime has already raised the soft limit to
// the hard one at start-up (Linux, macOS).
func CheckDescriptors(nodes int, audit bool) error {
	soft, hard, ok := openFileLimit()
	if !ok {
		return nil
	}
	if need := Descriptors(nodes, audit); need > soft {
		what := ""
		if audit {
			what = " (one audit log per node)"
		}
		return fmt.Errorf("%d nodes need about %d open files%s; the limit is %d (hard limit %d): at most %d nodes fit; raise the hard limit (ulimit -Hn, LimitNOFILE=) or start fewer",
			nodes, need, what, soft, hard, MaxNodes(soft, audit))
	}
	return nil
}
