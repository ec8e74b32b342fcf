package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExtensionCommand: `mco hello a b` runs mco-hello from PATH with the
// remaining arguments and passes its exit code on; built-in commands win.
func TestExtensionCommand(t *testing.T) {
	dir := t.TempDir()
	script := "#!/bin/sh\necho \"hello $*\"\nexit 7\n"
	for _, name := range []string{"mco-hello", "mco-ping"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out, errb bytes.Buffer
	app := &App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: os.Getenv}
	if code := Run(app, []string{"hello", "a", "b"}); code != 7 || out.String() != "hello a b\n" {
		t.Fatalf("mco hello a b: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	// ping is built in: the extension must not shadow it (it fails here for
	// lack of a configuration, which is the built-in's behaviour).
	t.Setenv("MCO_CONFIG", filepath.Join(dir, "missing.conf"))
	if code := Run(app, []string{"ping"}); code == 7 || strings.Contains(out.String(), "hello") {
		t.Fatalf("mco ping ran the extension: exit %d, stdout %q", code, out.String())
	}
	if code := Run(app, []string{"nosuchcommand"}); code != 1 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("unknown command: exit %d, stderr %q", code, errb.String())
	}
}
