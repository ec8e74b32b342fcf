package filter

import (
	"errors"
	"strconv"
)

// testNode is an in-memory Node for tests.
type testNode struct {
	id      string
	facts   map[string]any
	classes []string
	agents  []string
	// data maps "plugin(query)" to a result; a missing entry is an error.
	data map[string]map[string]any
}

func (n *testNode) Identity() string             { return n.id }
func (n *testNode) Fact(path string) (any, bool) { return Lookup(n.facts, path) }
func (n *testNode) Classes() []string            { return n.classes }
func (n *testNode) Agents() []string             { return n.agents }
func (n *testNode) Data(plugin, query string) (map[string]any, error) {
	if res, ok := n.data[plugin+"("+query+")"]; ok {
		return res, nil
	}
	return nil, errors.New("no such data")
}

// newTestNode is a typical node: nested facts, a list fact, classes, agents
// and a few data plugin answers.
func newTestNode() *testNode {
	return &testNode{
		id: "web1.example.com",
		facts: map[string]any{
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
		classes: []string{"apache", "role::web", "profile::base"},
		agents:  []string{"rpcutil", "package", "service"},
		data: map[string]map[string]any{
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
func bigNode() *testNode {
	n := newTestNode()
	for i := len(n.facts); i < 50; i++ {
		n.facts["fact"+strconv.Itoa(i)] = "value" + strconv.Itoa(i)
	}
	return n
}
