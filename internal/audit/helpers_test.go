package audit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var testEpoch = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// testRequest is request record i of a test log.
func testRequest(i int, node string) RequestRecord {
	return RequestRecord{
		Kind:        KindRequest,
		Time:        testEpoch.Add(time.Duration(i) * time.Second),
		RequestID:   fmt.Sprintf("req-%s-%d", node, i),
		RequestTime: testEpoch.Add(time.Duration(i)*time.Second - time.Millisecond),
		Caller:      "cert=bob.mcollective",
		Sender:      "bobs-laptop",
		Collective:  "mcollective",
		Agent:       "rpcutil",
		Action:      "ping",
		Arguments:   map[string]any{"n": float64(i)},
		Decision:    Allow,
		PolicyLine:  "rpcutil.policy:2",
		Node:        node,
	}
}

// writeTestLog appends n request records to a new log in a temp dir and
// closes it, returning the path and the lines as written (without newlines).
func writeTestLog(t *testing.T, n int, opts Options) (string, [][]byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if err := l.Append(testRequest(i, "node1")); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, readLines(t, path)
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 {
		return nil
	}
	return bytes.Split(bytes.TrimSuffix(data, []byte{'\n'}), []byte{'\n'})
}

// joinLines rebuilds a file from lines; each gets its newline.
func joinLines(lines [][]byte) []byte {
	var b []byte
	for _, l := range lines {
		b = append(b, l...)
		b = append(b, '\n')
	}
	return b
}

// crash leaves l as a killed daemon would: files closed without the head
// Close writes, and no head sync left running (it would not outlive the
// process either).
func crash(l *Log) {
	l.headMu.Lock()
	l.mu.Lock()
	l.f.Close()
	if l.hf != nil {
		l.hf.Close()
	}
}
