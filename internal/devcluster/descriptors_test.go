package devcluster

import (
	"strings"
	"testing"
)

func TestDescriptorBudget(t *testing.T) {
	// 10,000 nodes with audit logs fit the 20,000 open files this project's
	// CI machines allow; without sharing connections they needed 30,000.
	if got := Descriptors(10_000, true); got > 20_000 {
		t.Errorf("10,000 nodes with audit logs need %d descriptors, want ≤ 20,000", got)
	}
	for _, limit := range []int{100, 1024, 20_000} {
		for _, audit := range []bool{false, true} {
			n := MaxNodes(limit, audit)
			if Descriptors(n, audit) > limit || Descriptors(n+1, audit) <= limit {
				t.Errorf("MaxNodes(%d, %v) = %d: needs %d, one more needs %d", limit, audit, n, Descriptors(n, audit), Descriptors(n+1, audit))
			}
		}
	}
}

func TestCheckDescriptorsRefusesUpFront(t *testing.T) {
	soft, _, ok := openFileLimit()
	if !ok {
		t.Skip("no open-file limit on this platform")
	}
	if err := CheckDescriptors(10, true); err != nil {
		t.Fatalf("10 nodes refused: %v", err)
	}
	too := MaxNodes(soft, true) + 1
	err := CheckDescriptors(too, true)
	if err == nil {
		t.Fatalf("%d nodes accepted with a limit of %d open files", too, soft)
	}
	for _, want := range []string{"open files", "at most", "audit log"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
