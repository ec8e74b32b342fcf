package data

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRegistry(t *testing.T) {
	r := New(NewCollective(func() []string { return []string{"mcollective"} }), NewFact(func(string) (any, bool) { return nil, false }))
	if got, want := r.Names(), []string{"collective", "fact"}; !cmp.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	if !r.Has("fact") || r.Has("fstat") {
		t.Errorf("Has: fact=%v fstat=%v, want true false", r.Has("fact"), r.Has("fstat"))
	}
	if _, err := r.Query(context.Background(), "nope", "x"); !errors.Is(err, ErrUnknownPlugin) {
		t.Errorf("Query(nope) error = %v, want ErrUnknownPlugin", err)
	}
	if _, err := r.Query(context.Background(), "fact", ""); err == nil {
		t.Error("Query(fact, \"\") succeeded, want error")
	}
	res, err := r.Query(context.Background(), "collective", "mcollective")
	if err != nil || res["member"] != true {
		t.Errorf("Query(collective) = %v, %v; want member=true", res, err)
	}
	var nilReg *Registry
	if nilReg.Has("fact") || nilReg.Names() != nil {
		t.Error("nil registry should be empty")
	}
}

func TestKnownNames(t *testing.T) {
	want := []string{"agent", "collective", "fact", "fstat", "package", "puppet", "service", "sysctl"}
	if got := KnownNames(); !cmp.Equal(got, want) {
		t.Errorf("KnownNames() = %v, want %v", got, want)
	}
}

func TestFStat(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "issue")
	content := []byte("Debian GNU/Linux\n")
	if err := os.WriteFile(file, content, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, 0o640); err != nil { // umask-proof
		t.Fatal(err)
	}
	mtime := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	if err := os.Chtimes(file, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	now := mtime.Add(90 * time.Second)
	p := NewFStat(func() time.Time { return now })
	md5sum := md5.Sum(content)
	sha := sha256.Sum256(content)

	res, err := p.Query(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"present":       1,
		"output":        "present",
		"permissions":   "0640",
		"type":          "file",
		"size":          int64(len(content)),
		"mode":          "100640", // st_mode in octal, as MCollective printed it
		"md5":           hex.EncodeToString(md5sum[:]),
		"sha256":        hex.EncodeToString(sha[:]),
		"mtime_seconds": mtime.Unix(),
		"mtime_age":     int64(90),
		"atime_seconds": mtime.Unix(),
		"uid":           int64(os.Getuid()),
		"gid":           int64(os.Getgid()),
	}
	for k, v := range want {
		if res[k] != v {
			t.Errorf("fstat(%s)[%s] = %#v, want %#v", file, k, res[k], v)
		}
	}
	for _, k := range []string{"mtime", "ctime", "atime", "ctime_seconds", "ctime_age", "atime_age"} {
		if _, ok := res[k]; !ok {
			t.Errorf("fstat(%s) lacks field %s", file, k)
		}
	}

	tests := []struct {
		name string
		path string
		want map[string]any // subset of the result
	}{
		{"missing", filepath.Join(dir, "absent"), map[string]any{"present": 0, "output": "not present"}},
		{"directory", dir, map[string]any{"present": 1, "type": "directory", "md5": ""}},
		{"symlink not followed", link, map[string]any{"present": 1, "type": "symlink", "sha256": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := p.Query(context.Background(), tt.path)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if res[k] != v {
					t.Errorf("[%s] = %#v, want %#v", k, res[k], v)
				}
			}
		})
	}

	if _, err := p.Query(context.Background(), ""); err == nil {
		t.Error("fstat('') succeeded, want error")
	}
}

func TestFStatSocketAndSpecialBits(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Skipf("unix sockets unavailable: %v", err)
	}
	defer l.Close()
	sticky := filepath.Join(dir, "sticky")
	if err := os.Mkdir(sticky, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sticky, 0o755|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	p := NewFStat(nil)
	for path, want := range map[string]map[string]any{
		sock:   {"type": "socket"},
		sticky: {"type": "directory", "mode": "41755", "permissions": "1755"},
	} {
		res, err := p.Query(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range want {
			if res[k] != v {
				t.Errorf("fstat(%s)[%s] = %#v, want %#v", path, k, res[k], v)
			}
		}
	}
}

func TestSysctl(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "net", "ipv4"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "net", "ipv4", "ip_forward"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := NewSysctl(root)
	tests := []struct {
		key     string
		want    map[string]any
		wantErr bool
	}{
		{key: "net.ipv4.ip_forward", want: map[string]any{"present": true, "value": "1"}},
		{key: "net.ipv4.nope", want: map[string]any{"present": false}},
		{key: "", wantErr: true},
		{key: "net..ip_forward", wantErr: true},
		{key: "...etc", wantErr: true},
		{key: "net/ipv4/ip_forward", wantErr: true},
	}
	for _, tt := range tests {
		got, err := p.Query(context.Background(), tt.key)
		if (err != nil) != tt.wantErr {
			t.Errorf("sysctl(%q) error = %v, wantErr %v", tt.key, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !cmp.Equal(got, tt.want) {
			t.Errorf("sysctl(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

func TestFact(t *testing.T) {
	facts := map[string]any{"os.family": "Debian", "cpus": 4}
	p := NewFact(func(path string) (any, bool) { v, ok := facts[path]; return v, ok })
	tests := []struct {
		path string
		want map[string]any
	}{
		{"os.family", map[string]any{"present": true, "value": "Debian"}},
		{"cpus", map[string]any{"present": true, "value": 4}},
		{"missing", map[string]any{"present": false}},
	}
	for _, tt := range tests {
		got, err := p.Query(context.Background(), tt.path)
		if err != nil || !cmp.Equal(got, tt.want) {
			t.Errorf("fact(%q) = %v, %v; want %v", tt.path, got, err, tt.want)
		}
	}
}

func TestAgent(t *testing.T) {
	meta := map[string]any{"name": "package", "version": "1.0.0", "timeout": 60}
	p := NewAgent(func(name string) (map[string]any, bool) {
		if name == "package" {
			return meta, true
		}
		return nil, false
	})
	got, err := p.Query(context.Background(), "package")
	want := map[string]any{"present": true, "name": "package", "version": "1.0.0", "timeout": 60}
	if err != nil || !cmp.Equal(got, want) {
		t.Errorf("agent(package) = %v, %v; want %v", got, err, want)
	}
	if _, ok := meta["present"]; ok {
		t.Error("agent plugin modified the metadata map it was given")
	}
	got, err = p.Query(context.Background(), "nope")
	if err != nil || !cmp.Equal(got, map[string]any{"present": false}) {
		t.Errorf("agent(nope) = %v, %v; want present=false", got, err)
	}
	if _, err := p.Query(context.Background(), ""); err == nil {
		t.Error("agent('') succeeded, want error")
	}
}

func TestCollective(t *testing.T) {
	p := NewCollective(func() []string { return []string{"mcollective", "production"} })
	for name, want := range map[string]bool{"production": true, "development": false} {
		got, err := p.Query(context.Background(), name)
		if err != nil || got["member"] != want {
			t.Errorf("collective(%q) = %v, %v; want member=%v", name, got, err, want)
		}
	}
	if _, err := p.Query(context.Background(), ""); err == nil {
		t.Error("collective('') succeeded, want error")
	}
}

// TestFStatHashCached: the digests of an unchanged file come from the cache
// (a file's bytes are read once however many requests name it), and a
// rewrite of the file is seen.
func TestFStatHashCached(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := NewFStat(nil).(fstat)
	first, err := p.Query(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.hashes.m) != 1 {
		t.Fatalf("%d cached digests, want 1", len(p.hashes.m))
	}
	// A cancelled context cannot hash: a result now proves the cache served it.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	again, err := p.Query(ctx, path)
	if err != nil || again["md5"] != first["md5"] {
		t.Fatalf("cached query: %v, md5 %v want %v", err, again["md5"], first["md5"])
	}
	if err := os.WriteFile(path, []byte("two!"), 0o600); err != nil {
		t.Fatal(err)
	}
	changed, err := p.Query(context.Background(), path)
	if err != nil || changed["md5"] == first["md5"] {
		t.Fatalf("after a rewrite: %v, md5 unchanged %v", err, changed["md5"])
	}
}
