package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	app := &App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: os.Getenv}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	code := Run(app, args)
	return code, out.String(), errb.String()
}

// TestRolloutNeedsReplies: rollout flags that need replies are refused with
// --reply-to or --no-results before anything is sent (no configuration, no
// broker needed to get this far).
func TestRolloutNeedsReplies(t *testing.T) {
	t.Setenv("MCO_CONFIG", filepath.Join(t.TempDir(), "absent.conf"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rpc", "rpcutil", "ping", "--batch", "2", "--reply-to", "x"}, "--reply-to cannot be combined"},
		{[]string{"rpc", "rpcutil", "ping", "--batch", "2", "--max-failures", "1", "--no-results"}, "--max-failures needs replies"},
	} {
		code, _, stderr := runCLI(t, t.TempDir(), tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("mco %v: exit %d, stderr %q; want 1 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestPKISignGuards: signing shows the requested name, --name pins it, and a
// privileged client name needs --privileged.
func TestPKISignGuards(t *testing.T) {
	dir := t.TempDir()
	if code, _, stderr := runCLI(t, dir, "pki", "init", "--dir", "pki"); code != 0 {
		t.Fatalf("pki init: %s", stderr)
	}
	if code, _, stderr := runCLI(t, dir, "pki", "request", "ui.privileged.mcollective"); code != 0 {
		t.Fatalf("pki request: %s", stderr)
	}
	csr := "ui.privileged.mcollective.csr"
	code, stdout, stderr := runCLI(t, dir, "pki", "sign", "client", csr, "--dir", "pki")
	if code == 0 || !strings.Contains(stdout, `name "ui.privileged.mcollective"`) || !strings.Contains(stderr, "--privileged") {
		t.Fatalf("privileged name without --privileged: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := runCLI(t, dir, "pki", "sign", "client", csr, "--dir", "pki", "--privileged", "--name", "other.mcollective"); code == 0 || !strings.Contains(stderr, "not signed") {
		t.Fatalf("--name mismatch: exit %d %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, dir, "pki", "sign", "client", csr, "--dir", "pki", "--privileged", "--name", "ui.privileged.mcollective"); code != 0 {
		t.Fatalf("explicit privileged signing: exit %d %s", code, stderr)
	}
}

// TestJobIDCheckedFirst: a malformed job id is refused before connecting or
// discovering (no configuration, no broker needed to get this far), so the
// error names the id whatever the fleet looks like.
func TestJobIDCheckedFirst(t *testing.T) {
	t.Setenv("MCO_CONFIG", filepath.Join(t.TempDir(), "absent.conf"))
	for _, args := range [][]string{{"job", "status", "../etc"}, {"job", "results", "../etc", "--wait"}, {"job", "results", "a b"}} {
		code, _, stderr := runCLI(t, t.TempDir(), args...)
		if code != 1 || !strings.Contains(stderr, "is not a job id") {
			t.Errorf("mco %v: exit %d, stderr %q; want 1 and \"is not a job id\"", args, code, stderr)
		}
	}
}
