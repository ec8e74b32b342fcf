package audit

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rotate does what logrotate does with "compress" and "delaycompress":
// audit.log.N.gz -> N+1, audit.log.1 -> audit.log.2.gz, audit.log -> .1.
func rotate(t *testing.T, path string) {
	t.Helper()
	for n := 8; n >= 2; n-- {
		from := path + "." + itoa(n) + ".gz"
		if _, err := os.Stat(from); err == nil {
			mustRename(t, from, path+"."+itoa(n+1)+".gz")
		}
	}
	if data, err := os.ReadFile(path + ".1"); err == nil {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(data)
		zw.Close()
		if err := os.WriteFile(path+".2.gz", b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Remove(path + ".1")
	}
	mustRename(t, path, path+".1")
}

func itoa(n int) string { return string(rune('0' + n)) }

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func appendN(t *testing.T, l *Log, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if err := l.Append(testRequest(i, "node1")); err != nil {
			t.Fatal(err)
		}
	}
}

func allFiles(path string) []string {
	return append(RotatedSiblings(path), path)
}

// TestRotationKeepsTheChain: records written across two rotations (one file
// compressed) and a restart verify as one chain of 9.
func TestRotationKeepsTheChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 1, 3)
	rotate(t, path)
	appendN(t, l, 4, 4) // between the move and the SIGHUP: still the old file
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 5, 6)
	rotate(t, path)
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	// Restart before anything is written to the new file: the chain goes on
	// from the head file and the rotated file.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l, err = Open(path, Options{}); err != nil {
		t.Fatalf("Open after rotation: %v", err)
	}
	appendN(t, l, 7, 9)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if seq, _ := l.Head(); seq != 9 {
		t.Errorf("head seq %d, want 9", seq)
	}

	files := allFiles(path)
	want := []string{path + ".2.gz", path + ".1", path}
	if strings.Join(files, " ") != strings.Join(want, " ") {
		t.Fatalf("rotated set %v, want %v", files, want)
	}
	// Given in any order, e.g. a shell glob's.
	res, err := VerifySet([]string{path, path + ".1", path + ".2.gz"}, SetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 9 || res.FirstSeq != 1 || res.LastSeq != 9 {
		t.Errorf("VerifySet = %+v, want 9 records seq 1..9", res)
	}
	if lines := readLines(t, path); !bytes.HasPrefix(lines[0], []byte(`{"seq":7,"prev":"`)) {
		t.Errorf("first line of the new file: %s", lines[0])
	}
}

func TestVerifySetNamesFileAndLine(t *testing.T) {
	setup := func(t *testing.T) string {
		path := filepath.Join(t.TempDir(), "audit.log")
		l, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		appendN(t, l, 1, 3)
		rotate(t, path)
		l.Reopen()
		appendN(t, l, 4, 6)
		rotate(t, path)
		l.Reopen()
		appendN(t, l, 7, 8)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	}
	fileErr := func(t *testing.T, err error, file string, line int, seq uint64, reason string) {
		t.Helper()
		var fe *FileChainError
		if !errors.As(err, &fe) {
			t.Fatalf("err = %v, want a *FileChainError", err)
		}
		if fe.File != file || fe.Line != line || fe.Seq != seq || !strings.Contains(fe.Reason, reason) {
			t.Errorf("err = %v, want %s line %d seq %d %q", err, file, line, seq, reason)
		}
		if !strings.Contains(err.Error(), file+": audit chain broken at line ") {
			t.Errorf("message %q does not name the file first", err)
		}
	}

	t.Run("line edited in a gzip'ed file", func(t *testing.T) {
		path := setup(t)
		gz := path + ".2.gz"
		f, _ := os.Open(gz)
		zr, _ := gzip.NewReader(f)
		var plain bytes.Buffer
		plain.ReadFrom(zr)
		f.Close()
		edited := bytes.Replace(plain.Bytes(), []byte(`"n":2`), []byte(`"n":20`), 1)
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(edited)
		zw.Close()
		os.WriteFile(gz, b.Bytes(), 0o600)
		_, err := VerifySet(allFiles(path), SetOptions{})
		fileErr(t, err, gz, 3, 3, "prev does not match")
	})
	t.Run("a rotated file missing", func(t *testing.T) {
		path := setup(t)
		os.Remove(path + ".1")
		_, err := VerifySet(allFiles(path), SetOptions{})
		fileErr(t, err, path, 1, 7, "does not continue the previous file")
	})
	t.Run("oldest files deleted by the rotation policy", func(t *testing.T) {
		path := setup(t)
		os.Remove(path + ".2.gz")
		_, err := VerifySet(allFiles(path), SetOptions{})
		fileErr(t, err, path+".1", 1, 4, "chain starts at seq 4")
		res, err := VerifySet(allFiles(path), SetOptions{Partial: true})
		if err != nil || res.Records != 5 || res.FirstSeq != 4 {
			t.Errorf("partial: %+v, %v", res, err)
		}
	})
	t.Run("last lines of the live file removed", func(t *testing.T) {
		path := setup(t)
		lines := readLines(t, path)
		os.WriteFile(path, joinLines(lines[:1]), 0o600)
		_, err := VerifySet(allFiles(path), SetOptions{})
		fileErr(t, err, path, 2, 8, "lines removed from the end")
	})
}

func TestReopenRefusesAForeignFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	appendN(t, l, 1, 2)
	if err := l.Reopen(); err != nil {
		t.Fatalf("Reopen of the unrotated file: %v", err)
	}
	other, _ := writeTestLog(t, 5, Options{})
	mustRename(t, path, path+".1")
	data, _ := os.ReadFile(other)
	os.WriteFile(path, data, 0o600)
	if err := l.Reopen(); err == nil || !strings.Contains(err.Error(), "not continuing another chain") {
		t.Fatalf("Reopen into another chain: %v", err)
	}
	// The log goes on in the file it had.
	appendN(t, l, 3, 3)
	if _, err := VerifySet([]string{path + ".1"}, SetOptions{}); err != nil {
		t.Error(err)
	}
}

func TestOpenEmptiedLogWithWrongRotatedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 1, 3)
	l.Close()
	// audit.log.1 exists but is not where the chain ended.
	lines := readLines(t, path)
	os.WriteFile(path+".1", joinLines(lines[:2]), 0o600)
	os.WriteFile(path, nil, 0o600)
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "does not end with the line the head file records") {
		t.Fatalf("Open = %v", err)
	}
}

func TestGroupRotation(t *testing.T) {
	got := GroupRotation([]string{"a/audit.log", "b/x.log-20261201.gz", "a/audit.log.10.gz", "b/x.log", "a/audit.log.2.gz", "a/audit.log.1", "b/x.log-20261125"})
	want := [][]string{
		{"a/audit.log.10.gz", "a/audit.log.2.gz", "a/audit.log.1", "a/audit.log"},
		{"b/x.log-20261125", "b/x.log-20261201.gz", "b/x.log"},
	}
	if len(got) != 2 || strings.Join(got[0], " ") != strings.Join(want[0], " ") || strings.Join(got[1], " ") != strings.Join(want[1], " ") {
		t.Errorf("GroupRotation = %v, want %v", got, want)
	}
}
