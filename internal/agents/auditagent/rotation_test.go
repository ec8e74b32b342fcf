package auditagent

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/marionette/mco/internal/audit"
)

// TestReadAcrossRotation: lines logrotate moved to audit.log.2.gz and
// audit.log.1 are still served, in order, and pages cross file boundaries.
func TestReadAcrossRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seq := 0
	appendN := func(n int) {
		for range n {
			seq++
			if err := l.Append(audit.CompleteRecord{Kind: audit.KindComplete, Time: time.Unix(int64(seq), 0).UTC(), RequestID: strings.Repeat("r", 100), Node: "n1"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var all []string
	collect := func(p string) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")...)
	}
	appendN(3)
	collect(path)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	appendN(3)
	collect(path)
	// The second rotation compresses the first rotated file.
	data, _ := os.ReadFile(path + ".1")
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	zw.Close()
	os.WriteFile(path+".2.gz", b.Bytes(), 0o600)
	os.Remove(path + ".1")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	appendN(2)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	collect(path)

	res, err := Read(context.Background(), path, 1, 0, MaxReplyBytes)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Lines, "\n") != strings.Join(all, "\n") || res.Head != 8 {
		t.Fatalf("Read from 1 across rotation: %d lines, head %d; want the 8 lines in order", len(res.Lines), res.Head)
	}
	res, err = Read(context.Background(), path, 2, 5, MaxReplyBytes)
	if err != nil || strings.Join(res.Lines, "\n") != strings.Join(all[1:5], "\n") {
		t.Fatalf("Read 2..5: %v, %v", res, err)
	}
	// Pages of two lines cross from the gzip'ed file to the live one.
	page := 2 * jsonSize([]byte(all[7]))
	var got []string
	for from, n := uint64(1), 0; from != 0; n++ {
		if n > 10 {
			t.Fatal("paging does not end")
		}
		res, err := Read(context.Background(), path, from, 0, page)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, res.Lines...)
		from = res.Next
	}
	if strings.Join(got, "\n") != strings.Join(all, "\n") {
		t.Errorf("paged lines differ from the rotated set")
	}
}
