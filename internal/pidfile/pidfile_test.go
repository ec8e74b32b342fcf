package pidfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

func TestLive(t *testing.T) {
	dir := t.TempDir()
	// A process that has exited: its PID is stale (the kernel does not
	// reuse it while this test runs, in practice; a reused PID would read
	// as live, as it does for Puppet and Chef themselves).
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	self := os.Getpid()
	tests := []struct {
		name    string
		content *string // nil: no file
		wantPID int
		wantOK  bool
	}{
		{"live process", ptr(strconv.Itoa(self) + "\n"), self, true},
		{"surrounding space", ptr("  " + strconv.Itoa(self) + " \n"), self, true},
		{"dead process", ptr(strconv.Itoa(dead.Process.Pid)), 0, false},
		{"no file", nil, 0, false},
		{"empty file", ptr(""), 0, false},
		{"not a number", ptr("puppet\n"), 0, false},
		{"zero", ptr("0"), 0, false},
		{"negative", ptr("-1"), 0, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strconv.Itoa(i)+".pid")
			if tt.content != nil {
				if err := os.WriteFile(path, []byte(*tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			pid, since, ok := Live(path)
			if pid != tt.wantPID || ok != tt.wantOK {
				t.Fatalf("Live = %d, %v; want %d, %v", pid, ok, tt.wantPID, tt.wantOK)
			}
			if fi, err := os.Stat(path); ok && (err != nil || !since.Equal(fi.ModTime())) {
				t.Fatalf("since %v, want the file's mtime", since)
			}
		})
	}
	if _, _, ok := Live(""); ok {
		t.Fatal("an empty path reads as a live process")
	}
}

func ptr(s string) *string { return &s }
