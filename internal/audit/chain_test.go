package audit

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestVerify(t *testing.T) {
	_, lines := writeTestLog(t, 5, Options{})
	tests := []struct {
		name       string
		file       func() []byte
		wantN      int
		wantLine   int // 0: no error
		wantSeq    uint64
		wantReason string
	}{
		{
			name:  "intact",
			file:  func() []byte { return joinLines(lines) },
			wantN: 5,
		},
		{
			name:  "empty",
			file:  func() []byte { return nil },
			wantN: 0,
		},
		{
			name: "line edited in the middle",
			file: func() []byte {
				l := slices.Clone(lines)
				l[2] = bytes.Replace(l[2], []byte(`"ping"`), []byte(`"pong"`), 1)
				return joinLines(l)
			},
			wantN: 3, wantLine: 4, wantSeq: 4, wantReason: "prev does not match",
		},
		{
			name: "line removed",
			file: func() []byte {
				return joinLines(slices.Delete(slices.Clone(lines), 2, 3))
			},
			wantN: 2, wantLine: 3, wantSeq: 4, wantReason: "seq jumps from 2 to 4",
		},
		{
			name: "two lines swapped",
			file: func() []byte {
				l := slices.Clone(lines)
				l[1], l[2] = l[2], l[1]
				return joinLines(l)
			},
			wantN: 1, wantLine: 2, wantSeq: 3, wantReason: "seq jumps from 1 to 3",
		},
		{
			name: "line duplicated",
			file: func() []byte {
				return joinLines(slices.Insert(slices.Clone(lines), 2, lines[1]))
			},
			wantN: 2, wantLine: 3, wantSeq: 2, wantReason: "seq goes back from 2 to 2",
		},
		{
			name: "truncated mid-line",
			file: func() []byte {
				b := joinLines(lines)
				return b[:len(b)-10]
			},
			wantN: 4, wantLine: 5, wantReason: "no newline",
		},
		{
			name: "truncated just before the final newline",
			file: func() []byte {
				b := joinLines(lines)
				return b[:len(b)-1]
			},
			wantN: 4, wantLine: 5, wantReason: "no newline",
		},
		{
			name:  "first lines removed",
			file:  func() []byte { return joinLines(lines[2:]) },
			wantN: 0, wantLine: 1, wantSeq: 3, wantReason: "chain starts at seq 3, not 1",
		},
		{
			name: "garbage line inserted",
			file: func() []byte {
				return joinLines(slices.Insert(slices.Clone(lines), 1, []byte("{not json")))
			},
			wantN: 1, wantLine: 2, wantReason: "invalid JSON",
		},
		{
			name: "blank line inserted",
			file: func() []byte {
				return joinLines(slices.Insert(slices.Clone(lines), 1, []byte{}))
			},
			wantN: 1, wantLine: 2, wantReason: "invalid JSON",
		},
		{
			name:  "line without chain fields",
			file:  func() []byte { return []byte(`{"kind":"request"}` + "\n") },
			wantN: 0, wantLine: 1, wantReason: `missing "seq"`,
		},
		{
			// The chain alone cannot see this; VerifyFile's head check and
			// the central copy can (TestVerifyFileHead, TestCollector*).
			name:  "last lines removed",
			file:  func() []byte { return joinLines(lines[:3]) },
			wantN: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Verify(bytes.NewReader(tt.file()))
			if n != tt.wantN {
				t.Errorf("n = %d, want %d", n, tt.wantN)
			}
			checkBroken(t, err, tt.wantLine, tt.wantSeq, tt.wantReason)
		})
	}
}

// checkBroken asserts err is nil (wantLine 0) or a *BrokenChainError at
// wantLine with wantSeq whose reason contains wantReason.
func checkBroken(t *testing.T, err error, wantLine int, wantSeq uint64, wantReason string) {
	t.Helper()
	if wantLine == 0 {
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		return
	}
	var be *BrokenChainError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want *BrokenChainError", err)
	}
	if be.Line != wantLine || be.Seq != wantSeq || !strings.Contains(be.Reason, wantReason) {
		t.Errorf("err = %+v, want line %d seq %d reason containing %q", be, wantLine, wantSeq, wantReason)
	}
}

func TestVerifyFileHead(t *testing.T) {
	tests := []struct {
		name       string
		headEvery  int
		close      bool // Close writes the head at the last line
		keep       int  // lines kept from the front of the 5-line log
		edit       bool // edit the last kept line
		wantLine   int
		wantSeq    uint64
		wantReason string
	}{
		{name: "intact after close", close: true, keep: 5},
		{name: "last lines removed after close", close: true, keep: 3, wantLine: 4, wantSeq: 5, wantReason: "lines removed from the end"},
		{name: "all lines removed", close: true, keep: 0, wantLine: 1, wantSeq: 5, wantReason: "lines removed from the end"},
		{name: "last line edited after close", close: true, keep: 5, edit: true, wantLine: 5, wantSeq: 5, wantReason: "head file"},
		// Without Close (a crash) the head still follows every append
		// (issue 11 #8: once it was as of the last HeadEvery multiple, and
		// removing line 5 went unnoticed): any removal from the end shows.
		{name: "last line removed after a crash", headEvery: 2, keep: 4, wantLine: 5, wantSeq: 5, wantReason: "lines removed from the end"},
		{name: "last lines removed after a crash", headEvery: 2, keep: 3, wantLine: 4, wantSeq: 5, wantReason: "lines removed from the end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := t.TempDir() + "/audit.log"
			l, err := Open(path, Options{HeadEvery: tt.headEvery})
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 5; i++ {
				if err := l.Append(testRequest(i, "node1")); err != nil {
					t.Fatal(err)
				}
			}
			if tt.close {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				crash(l) // no head written at close
			}
			lines := readLines(t, path)[:tt.keep]
			if tt.edit {
				lines[len(lines)-1] = bytes.Replace(lines[len(lines)-1], []byte("ping"), []byte("pong"), 1)
			}
			if err := os.WriteFile(path, joinLines(lines), 0o600); err != nil {
				t.Fatal(err)
			}

			_, err = VerifyFile(path)
			checkBroken(t, err, tt.wantLine, tt.wantSeq, tt.wantReason)

			// Open refuses to continue a log the head shows was cut or edited.
			l2, err := Open(path, Options{})
			if (err != nil) != (tt.wantLine != 0) {
				t.Errorf("Open err = %v, want error: %v", err, tt.wantLine != 0)
			}
			if l2 != nil {
				l2.Close()
			}
		})
	}
}

func TestVerifyFileMissing(t *testing.T) {
	if _, err := VerifyFile(t.TempDir() + "/nope.log"); err == nil {
		t.Fatal("VerifyFile of a missing file succeeded")
	}
}

func TestLastLine(t *testing.T) {
	long := strings.Repeat("x", 10000)
	tests := []struct {
		name     string
		file     string
		wantLine string
		wantNil  bool
		wantTorn bool
	}{
		{name: "empty", file: "", wantNil: true},
		{name: "one line", file: "a\n", wantLine: "a"},
		{name: "two lines", file: "a\nbb\n", wantLine: "bb"},
		{name: "torn", file: "a\nbb", wantLine: "bb", wantTorn: true},
		{name: "empty last line", file: "a\n\n", wantLine: ""},
		{name: "long last line spanning chunks", file: "a\n" + long + "\n", wantLine: long},
		{name: "long only line", file: long + "\n", wantLine: long},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line, torn, err := lastLine(strings.NewReader(tt.file), int64(len(tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			if string(line) != tt.wantLine || torn != tt.wantTorn || (line == nil) != tt.wantNil {
				t.Errorf("lastLine = %q, %v; want %q, %v", line, torn, tt.wantLine, tt.wantTorn)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("{\"seq\":1,\"prev\":\"\"}\n"))
	f.Add([]byte("{\"seq\":2,\"prev\":\"\"}\nnot json"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := Verify(bytes.NewReader(data))
		if n < 0 || n > bytes.Count(data, []byte{'\n'}) {
			t.Fatalf("n = %d for %d newlines", n, bytes.Count(data, []byte{'\n'}))
		}
		var be *BrokenChainError
		if err != nil && (!errors.As(err, &be) || be.Line != n+1) {
			t.Fatalf("err = %v after %d lines, want *BrokenChainError at the next line", err, n)
		}
	})
}
