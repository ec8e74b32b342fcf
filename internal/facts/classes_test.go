package facts

import (
	"errors"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

func TestParseClasses(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", []string{}},
		{"plain", "base\nnginx\n", []string{"base", "nginx"}},
		{"crlf", "base\r\nnginx\r\n", []string{"base", "nginx"}},
		{"odd whitespace", "  base \t\n\n\t\tnginx\r\n   \n\r\n", []string{"base", "nginx"}},
		{"no final newline", "base\nnginx", []string{"base", "nginx"}},
		{"dedupe keeps first position", "a\nb\na\r\n c \nb\n", []string{"a", "b", "c"}},
		{"settings classes", "settings\nrole::web\nprofile::base\n", []string{"settings", "role::web", "profile::base"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseClasses(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("classes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseClassesReadError(t *testing.T) {
	boom := errors.New("boom")
	if _, err := ParseClasses(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Errorf("error = %v, want it to wrap %v", err, boom)
	}
}
