package filter

import (
	"strconv"
)

// newTestNode is a typical node: nested facts, a list fact, classes, agents
// and a few data plugin answers.
func newTestNode() *StaticNode {
	return &StaticNode{
		Name: "web1.example.com",
		FactValues: map[string]any{
			"os": map[string]any{
				"family":  "Debian",
				"release": map[string]any{"major": "12", "full": "12.5"},
			},
			"kernel":        "Linux",
			"kernelrelease": "6.1.0-18-amd64",
			"cpus":          4,
			"memory_gb":     15.5,
			"virtual":       false,
			"roles":         []any{"web", "cache"},
			"ports":         []any{80, 443},
			"networking":    map[string]any{"interfaces": []any{map[string]any{"name": "eth0", "ip": "10.0.0.5"}}},
			"flat.key":      "flat",
			"serial":        "1234567890123456789",
			"nothing":       nil,
			"env":           "prod",
		},
		ClassNames: []string{"apache", "role::web", "profile::base"},
		AgentNames: []string{"rpcutil", "package", "service"},
		Results: map[string]map[string]any{
			"fstat(/etc/issue)":     {"present": true, "md5": "95a5a06e937cbbb554fd483e62c1c156", "size": int64(27), "type": "file"},
			"fstat(/nope)":          {"present": false},
			"package(openssl)":      {"present": true, "installed": true, "version": "3.0.11"},
			"collective(prod)":      {"member": true},
			"collective(dev)":       {"member": false},
			"fact(os.family)":       {"present": true, "value": "Debian"},
			"sysctl(vm.swappiness)": {"present": true, "value": "60"},
			"odd(x)":                {"count": 3},
		},
	}
}

// bigNode has 50 facts, for benchmarks.
func bigNode() *StaticNode {
	n := newTestNode()
	for i := len(n.FactValues); i < 50; i++ {
		n.FactValues["fact"+strconv.Itoa(i)] = "value" + strconv.Itoa(i)
	}
	return n
}
