package audit

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/marionette/mco/internal/pkitest"
)

// TestSignedCheckpoints: a log written with checkpoints verifies against the
// CA; a forged line with the whole SHA-256 chain recomputed (which VerifyFile
// accepts) fails at the next checkpoint, and so does removing the
// checkpoints.
func TestSignedCheckpoints(t *testing.T) {
	ca := pkitest.New(t, "audit CA")
	id := ca.Node("node1")
	opts := Options{Node: "node1", CheckpointEvery: 3, Checkpoint: func(msg []byte) ([]byte, []byte) { return id.Sign(msg), id.Cert.Raw }}
	path, lines := writeTestLog(t, 7, opts) // 7 records, checkpoints after 3, 6 and at close
	if n := bytes.Count(joinLines(lines), []byte(`"kind":"checkpoint"`)); n != 3 {
		t.Fatalf("%d checkpoints in:\n%s", n, joinLines(lines))
	}
	res, err := VerifyCheckpoints(path, ca.Cert, 3)
	if err != nil || res.Checkpoints != 3 || res.Unsigned != 0 || res.Node != "node1" {
		t.Fatalf("intact log: %+v, %v", res, err)
	}

	// Forge record 2 and recompute the chain from there: the plain chain
	// verifies, the checkpoints do not.
	forged := rechain(t, lines, 1, func(b []byte) []byte { return bytes.Replace(b, []byte(`"ping"`), []byte(`"pong"`), 1) })
	if err := os.WriteFile(path, joinLines(forged), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(headPath(path))
	if _, err := VerifyFile(path); err != nil {
		t.Fatalf("the recomputed chain should pass the plain check: %v", err)
	}
	if _, err := VerifyCheckpoints(path, ca.Cert, 3); err == nil || !strings.Contains(err.Error(), "checkpoint invalid") {
		t.Fatalf("forged line: %v, want an invalid checkpoint", err)
	}

	// Dropping the checkpoints (and rechaining) is seen as a long unsigned run.
	var plain [][]byte
	for _, l := range lines {
		if !bytes.Contains(l, []byte(`"kind":"checkpoint"`)) {
			plain = append(plain, l)
		}
	}
	if err := os.WriteFile(path, joinLines(rechain(t, plain, 0, nil)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyCheckpoints(path, ca.Cert, 3); err == nil || !strings.Contains(err.Error(), "without a signed checkpoint") {
		t.Fatalf("checkpoints removed: %v", err)
	}
}

// rechain edits lines[from:] with edit (nil: none) and recomputes seq and
// prev from there, as a forger with write access but no key would.
func rechain(t *testing.T, lines [][]byte, from int, edit func([]byte) []byte) [][]byte {
	t.Helper()
	out := make([][]byte, 0, len(lines))
	c := chain{}
	for i, l := range lines {
		body := l[bytes.Index(l, []byte(`"prev":"`))+len(`"prev":"`):]
		body = body[bytes.IndexByte(body, '"')+1:] // after prev's value
		if i == from && edit != nil {
			body = edit(body)
		}
		line := []byte(`{"seq":` + strconv.FormatUint(c.seq+1, 10) + `,"prev":"` + c.hash + `"`)
		line = append(line, body...)
		out = append(out, line)
		c = chain{seq: c.seq + 1, hash: hashLine(line)}
	}
	return out
}
