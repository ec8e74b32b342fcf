package logging

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJSONToFileReopenedAfterRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "server.log")
	l, err := New(Settings{Level: "debug", Format: "json", File: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Info("before", "n", 1)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	l.Info("still into the rotated file")
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Debug("after")

	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !strings.Contains(string(old), `"msg":"before"`) || !strings.Contains(string(old), "still into the rotated file") {
		t.Errorf("rotated file: %s", old)
	}
	var rec map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(cur), &rec); err != nil || rec["msg"] != "after" || rec["level"] != "DEBUG" {
		t.Errorf("new file %q: one JSON record 'after' at DEBUG expected (%v)", cur, err)
	}
}

func TestTextToStderrAndLevel(t *testing.T) {
	var b bytes.Buffer
	l, err := New(Settings{Level: "warn"}, &b)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", "reason", "signature")
	if strings.Contains(b.String(), "hidden") || !strings.Contains(b.String(), `level=WARN msg=shown reason=signature`) {
		t.Errorf("stderr: %q", b.String())
	}
	if err := l.Reopen(); err != nil {
		t.Errorf("Reopen without a file: %v", err)
	}
}

func TestBadSettings(t *testing.T) {
	if _, err := New(Settings{Level: "loud"}, nil); err == nil || !strings.Contains(err.Error(), "log.level") {
		t.Errorf("bad level: %v", err)
	}
	if _, err := New(Settings{Format: "xml"}, nil); err == nil || !strings.Contains(err.Error(), "log.format") {
		t.Errorf("bad format: %v", err)
	}
	if _, err := New(Settings{File: filepath.Join(t.TempDir(), "missing", "x.log")}, nil); err == nil || !strings.Contains(err.Error(), "log.file") {
		t.Errorf("unwritable file: %v", err)
	}
}
