package external

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoad(t *testing.T) {
	platformExe := fmt.Sprintf("%s-%s_%s", "multi", runtime.GOOS, runtime.GOARCH)
	tests := []struct {
		name    string
		setup   func(t *testing.T, agentDir string) // adds files next to a good agent "good"
		want    []string                            // agents loaded
		wantErr string                              // substring of the single error; "" for none
		errFile string                              // file the error must name
	}{
		{
			name:  "good agent only",
			setup: func(t *testing.T, dir string) {},
			want:  []string{"good"},
		},
		{
			name: "per-platform executable",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "multi.json"), testDDL("multi", "run"), 0o644)
				writeFile(t, filepath.Join(dir, "multi", platformExe), "#!/bin/sh\n", 0o755)
			},
			want: []string{"good", "multi"},
		},
		{
			name: "per-platform dir without this platform",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "multi.json"), testDDL("multi", "run"), 0o644)
				writeFile(t, filepath.Join(dir, "multi", "multi-plan9_mips"), "#!/bin/sh\n", 0o755)
			},
			want:    []string{"good"},
			wantErr: "does not exist",
			errFile: "multi.json",
		},
		{
			name: "bad DDL",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "broken.json"), `{"metadata": {"name": "broken",`, 0o644)
				writeFile(t, filepath.Join(dir, "broken"), "#!/bin/sh\n", 0o755)
			},
			want:    []string{"good"},
			wantErr: "broken.json",
			errFile: "broken.json",
		},
		{
			name: "missing executable",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "lonely.json"), testDDL("lonely", "run"), 0o644)
			},
			want:    []string{"good"},
			wantErr: "no executable",
			errFile: "lonely.json",
		},
		{
			name: "executable without execute bit",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "noexec.json"), testDDL("noexec", "run"), 0o644)
				writeFile(t, filepath.Join(dir, "noexec"), "#!/bin/sh\n", 0o644)
			},
			want:    []string{"good"},
			wantErr: "is not executable",
			errFile: "noexec.json",
		},
		{
			name: "metadata.name differs from file name",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "alias.json"), testDDL("other", "run"), 0o644)
				writeFile(t, filepath.Join(dir, "alias"), "#!/bin/sh\n", 0o755)
			},
			want:    []string{"good"},
			wantErr: `metadata.name "other" does not match the file name "alias"`,
			errFile: "alias.json",
		},
		{
			name: "group-writable executable refused",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "lax.json"), testDDL("lax", "run"), 0o644)
				writeFile(t, filepath.Join(dir, "lax"), "#!/bin/sh\n", 0o755)
				chmod(t, filepath.Join(dir, "lax"), 0o775) // past the umask
			},
			want:    []string{"good"},
			wantErr: "writable by group or others (mode 0775)",
			errFile: "lax",
		},
		{
			name: "world-writable DDL refused",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "open.json"), testDDL("open", "run"), 0o644)
				chmod(t, filepath.Join(dir, "open.json"), 0o666)
				writeFile(t, filepath.Join(dir, "open"), "#!/bin/sh\n", 0o755)
			},
			want:    []string{"good"},
			wantErr: "refusing",
			errFile: "open.json",
		},
		{
			name: "hidden and non-JSON files are ignored",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, ".#good.json"), "lock", 0o644)
				writeFile(t, filepath.Join(dir, "good.ddl"), "ruby ddl", 0o644)
				writeFile(t, filepath.Join(dir, "README"), "text", 0o644)
			},
			want: []string{"good"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			libdir := t.TempDir()
			writeAgent(t, libdir, "good", "exit 0")
			tt.setup(t, filepath.Join(libdir, "agent"))

			agents, errs := NewLoader(Options{LibDirs: []string{libdir}}).Load()
			if diff := cmp.Diff(tt.want, names(agents)); diff != "" {
				t.Errorf("agents (-want +got):\n%s", diff)
			}
			if tt.wantErr == "" {
				for _, err := range errs {
					t.Errorf("unexpected error: %v", err)
				}
				return
			}
			if len(errs) != 1 {
				t.Fatalf("got %d errors %v, want one containing %q", len(errs), errs, tt.wantErr)
			}
			msg := errs[0].Error()
			if !strings.Contains(msg, tt.wantErr) || !strings.Contains(msg, filepath.Join(libdir, "agent", tt.errFile)) {
				t.Errorf("error %q should contain %q and name %s", msg, tt.wantErr, tt.errFile)
			}
		})
	}
}

func TestLoadRegistersEveryAction(t *testing.T) {
	libdir := t.TempDir()
	writeAgent(t, libdir, "multi", "exit 0", "one", "two", "three")
	a := loadOne(t, Options{LibDirs: []string{libdir}}, "multi")
	for _, action := range []string{"one", "two", "three"} {
		if _, ok := a.Handler(action); !ok {
			t.Errorf("no handler for action %s", action)
		}
	}
}

func TestLoadSeveralLibdirs(t *testing.T) {
	first, second, missing := t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "nope")
	writeAgent(t, first, "shared", `printf '{"message":"first"}' >"$2"`)
	writeAgent(t, second, "shared", `printf '{"message":"second"}' >"$2"`)
	writeAgent(t, second, "extra", "exit 0")

	agents, errs := NewLoader(Options{LibDirs: []string{missing, first, second}}).Load()
	if diff := cmp.Diff([]string{"extra", "shared"}, names(agents)); diff != "" {
		t.Errorf("agents (-want +got):\n%s", diff)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), filepath.Join(second, "agent", "shared.json")) ||
		!strings.Contains(errs[0].Error(), "already loaded from "+filepath.Join(first, "agent", "shared.json")) {
		t.Errorf("errors = %v, want one about the shadowed %s", errs, filepath.Join(second, "agent", "shared.json"))
	}
	// The first libdir wins.
	for _, a := range agents {
		if a.Name() == "shared" {
			rep := call(t, t.Context(), a, "run", nil)
			if got := rep.Data["message"]; got != "first" {
				t.Errorf("shared agent replied %v (status %d %q), want the first libdir's", got, rep.Status, rep.Message)
			}
		}
	}
}

// chmod sets a mode exactly, past the umask writeFile is subject to.
func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
