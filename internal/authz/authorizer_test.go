package authz

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// writeFiles creates the named files in dir; an empty content still creates
// the file.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAuthorize(t *testing.T) {
	const (
		allowAlice = "allow\tcert=alice\t*\t*\t*\n"
		allowOps   = "allow\tops\t*\t*\t*\n"
	)
	tests := []struct {
		name    string
		files   map[string]string
		opts    Options // Dir is filled in
		caller  string
		agent   string
		allowed bool
		file    string // base name of Decision.File, "" for none
		line    int
		reason  string
	}{
		{name: "agent policy allows", files: map[string]string{"package.policy": allowAlice},
			caller: "cert=alice", agent: "package", allowed: true, file: "package.policy", line: 1, reason: ReasonMatchedRule},
		{name: "agent policy denies", files: map[string]string{"package.policy": allowAlice},
			caller: "cert=bob", agent: "package", file: "package.policy", reason: ReasonNoDefault},
		{name: "no policy file denies", files: map[string]string{"default.policy": allowAlice},
			caller: "cert=alice", agent: "package", reason: `no policy file for agent "package"`},
		{name: "enable_default uses default.policy", files: map[string]string{"default.policy": allowAlice},
			opts:   Options{EnableDefault: true},
			caller: "cert=alice", agent: "package", allowed: true, file: "default.policy", line: 1, reason: ReasonMatchedRule},
		{name: "enable_default with custom name", files: map[string]string{"site.policy": allowAlice},
			opts:   Options{EnableDefault: true, DefaultName: "site"},
			caller: "cert=alice", agent: "package", allowed: true, file: "site.policy", line: 1, reason: ReasonMatchedRule},
		{name: "agent file wins over default.policy", files: map[string]string{"default.policy": allowAlice, "package.policy": "policy default deny\n"},
			opts:   Options{EnableDefault: true},
			caller: "cert=alice", agent: "package", file: "package.policy", line: 1, reason: ReasonPolicyDefault},
		{name: "invalid agent file does not fall back to default", files: map[string]string{"default.policy": allowAlice, "package.policy": "allow cert=alice * * *\n"},
			opts:   Options{EnableDefault: true},
			caller: "cert=alice", agent: "package", file: "package.policy", line: 1, reason: "policy file invalid"},
		{name: "enable_default without default file", opts: Options{EnableDefault: true},
			caller: "cert=alice", agent: "package", reason: "no policy file"},
		{name: "allow_unconfigured", opts: Options{AllowUnconfigured: true},
			caller: "cert=alice", agent: "package", allowed: true, reason: "no policy file: allow_unconfigured"},
		{name: "allow_unconfigured does not override an existing file", files: map[string]string{"package.policy": allowAlice},
			opts:   Options{AllowUnconfigured: true},
			caller: "cert=bob", agent: "package", file: "package.policy", reason: ReasonNoDefault},
		{name: "agent default without a file", opts: Options{AgentDefaults: map[string]string{"package": "allow"}},
			caller: "cert=bob", agent: "package", allowed: true, reason: "no policy file: agent policy_default allow"},
		{name: "agent default beats allow_unconfigured", opts: Options{AllowUnconfigured: true, AgentDefaults: map[string]string{"package": "deny"}},
			caller: "cert=bob", agent: "package", reason: "no policy file: agent policy_default deny"},
		{name: "site default fills a missing default line", files: map[string]string{"package.policy": allowAlice},
			opts:   Options{PolicyDefault: "allow"},
			caller: "cert=bob", agent: "package", allowed: true, file: "package.policy", reason: "site policy_default allow"},
		{name: "site default does not apply without a file", opts: Options{PolicyDefault: "allow"},
			caller: "cert=bob", agent: "package", reason: "no policy file"},
		{name: "file default line beats site default", files: map[string]string{"package.policy": "policy default deny\n" + allowAlice},
			opts:   Options{PolicyDefault: "allow"},
			caller: "cert=bob", agent: "package", file: "package.policy", line: 1, reason: ReasonPolicyDefault},
		{name: "agent default beats site default", files: map[string]string{"package.policy": allowAlice},
			opts:   Options{PolicyDefault: "allow", AgentDefaults: map[string]string{"package": "deny"}},
			caller: "cert=bob", agent: "package", file: "package.policy", reason: "agent policy_default deny"},
		{name: "other agent's default does not apply", files: map[string]string{"package.policy": allowAlice},
			opts:   Options{AgentDefaults: map[string]string{"service": "allow"}},
			caller: "cert=bob", agent: "package", file: "package.policy", reason: ReasonNoDefault},
		{name: "site default does not rescue an invalid file", files: map[string]string{"package.policy": "allow\tcert=alice\n"},
			opts:   Options{PolicyDefault: "allow"},
			caller: "cert=bob", agent: "package", file: "package.policy", line: 1, reason: "policy file invalid"},
		{name: "groups file", files: map[string]string{"package.policy": allowOps, "groups": "ops cert=carol\n"},
			caller: "cert=carol", agent: "package", allowed: true, file: "package.policy", line: 1, reason: ReasonMatchedRule},
		{name: "missing groups file makes groups unknown", files: map[string]string{"package.policy": allowOps},
			caller: "cert=carol", agent: "package", file: "package.policy", line: 1, reason: `unknown group "ops"`},
		{name: "broken groups file denies policies using groups", files: map[string]string{"package.policy": allowOps, "groups": "ops carol\n"},
			caller: "cert=carol", agent: "package", file: "package.policy", reason: "groups file invalid"},
		{name: "broken groups file leaves other policies alone", files: map[string]string{"package.policy": allowAlice, "groups": "ops carol\n"},
			caller: "cert=alice", agent: "package", allowed: true, file: "package.policy", line: 1, reason: ReasonMatchedRule},
		{name: "path traversal in agent name", files: map[string]string{"default.policy": "policy default allow\n"},
			opts:   Options{AllowUnconfigured: true},
			caller: "cert=alice", agent: "../default", reason: "invalid agent name"},
		{name: "empty agent name", opts: Options{AllowUnconfigured: true},
			caller: "cert=alice", agent: "", reason: "invalid agent name"},
		{name: "invalid policy_default option", opts: Options{AllowUnconfigured: true, PolicyDefault: "yes"},
			caller: "cert=alice", agent: "package", reason: "authorization config invalid"},
		{name: "invalid agent default option", opts: Options{AllowUnconfigured: true, AgentDefaults: map[string]string{"package": "Allow"}},
			caller: "cert=alice", agent: "package", reason: "authorization config invalid"},
		{name: "invalid default name option", opts: Options{AllowUnconfigured: true, DefaultName: "../x"},
			caller: "cert=alice", agent: "package", reason: "authorization config invalid"},
		{name: "policy path is a directory", files: map[string]string{}, opts: Options{AllowUnconfigured: true},
			caller: "cert=alice", agent: "dir", file: "dir.policy", reason: "policy file unreadable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			if err := os.Mkdir(filepath.Join(dir, "dir.policy"), 0o755); err != nil {
				t.Fatal(err)
			}
			opts := tt.opts
			opts.Dir = dir
			a := New(opts, nil)
			d := a.Authorize(t.Context(), Request{Caller: tt.caller, Agent: tt.agent, Action: "status"})
			file := ""
			if d.File != "" {
				file = filepath.Base(d.File)
			}
			if d.Allowed != tt.allowed || file != tt.file || d.Line != tt.line || !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("Authorize = %+v\nwant allowed=%v file=%q line=%d reason~%q", d, tt.allowed, tt.file, tt.line, tt.reason)
			}
		})
	}
}

// fakeClock lets reload tests move time forward without sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestReloadOnChange(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	var logs bytes.Buffer
	a := New(Options{Dir: dir}, slog.New(slog.NewTextHandler(&logs, nil)))
	a.now = clock.now
	path := filepath.Join(dir, "package.policy")
	req := Request{Caller: "cert=alice", Agent: "package", Action: "status"}

	steps := []struct {
		name    string
		write   *string // new content; nil leaves the file alone, "" removes it
		advance time.Duration
		allowed bool
		reason  string
	}{
		{name: "no file yet", reason: "no policy file"},
		{name: "new file not seen before the interval", write: ptr("policy default allow\n"), reason: "no policy file"},
		{name: "new file seen after the interval", advance: time.Second, allowed: true, reason: ReasonPolicyDefault},
		{name: "rewrite to deny", write: ptr("deny\tcert=alice\t*\t*\t*\n"), advance: time.Second, reason: ReasonMatchedRule},
		{name: "rewrite to a broken file", write: ptr("deny cert=alice\n"), advance: time.Second, reason: "policy file invalid"},
		{name: "broken file logged once, still denied", advance: time.Second, reason: "policy file invalid"},
		{name: "fixed again", write: ptr("allow\tcert=alice\t*\t*\t*\n"), advance: time.Second, allowed: true, reason: ReasonMatchedRule},
		{name: "removed", write: ptr(""), advance: time.Second, reason: "no policy file"},
	}
	for _, s := range steps {
		switch {
		case s.write == nil:
		case *s.write == "":
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(path, []byte(*s.write), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		clock.advance(s.advance)
		d := a.Authorize(t.Context(), req)
		if d.Allowed != s.allowed || !strings.Contains(d.Reason, s.reason) {
			t.Fatalf("%s: Authorize = %+v, want allowed=%v reason~%q", s.name, d, s.allowed, s.reason)
		}
	}
	if n := strings.Count(logs.String(), "package.policy:1: fields must be separated by TABs"); n != 1 {
		t.Errorf("broken file logged %d times, want once (on load):\n%s", n, logs.String())
	}
}

// TestReloadRenamedFile covers the usual deploy pattern: write elsewhere, then
// rename over the policy, which can keep the size.
func TestReloadRenamedFile(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	a := New(Options{Dir: dir}, nil)
	a.now = clock.now
	path := filepath.Join(dir, "package.policy")
	req := Request{Caller: "cert=alice", Agent: "package", Action: "status"}
	writeFiles(t, dir, map[string]string{"package.policy": "policy default allow\n"})
	if d := a.Authorize(t.Context(), req); !d.Allowed {
		t.Fatalf("before rename: %+v", d)
	}
	tmp := filepath.Join(dir, "package.policy.tmp")
	if err := os.WriteFile(tmp, []byte("policy default deny\n"), 0o644); err != nil { // same size
		t.Fatal(err)
	}
	mtime := time.Unix(1_600_000_000, 0)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	clock.advance(time.Second)
	if d := a.Authorize(t.Context(), req); !d.Allowed { // the touched mtime is a change too
		t.Fatalf("after touch: %+v", d)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	clock.advance(time.Second)
	if d := a.Authorize(t.Context(), req); d.Allowed {
		t.Fatalf("rename with same size and mtime not noticed: %+v", d)
	}
}

// TestAuthorizeConcurrent is for the race detector: many requests while the
// policy and groups files are rewritten and reloaded.
func TestAuthorizeConcurrent(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"package.policy": "allow\tops\t*\t*\t*\n", "groups": "ops cert=carol\n"})
	a := New(Options{Dir: dir, ReloadInterval: time.Nanosecond}, nil)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				a.Authorize(t.Context(), Request{Caller: "cert=carol", Agent: []string{"package", "service"}[(g+i)%2], Action: "status"})
			}
		}()
	}
	for i := range 20 {
		writeFiles(t, dir, map[string]string{"package.policy": strings.Repeat("# rev\n", i) + "allow\tops\t*\t*\t*\n"})
	}
	wg.Wait()
	if d := a.Authorize(t.Context(), Request{Caller: "cert=carol", Agent: "package", Action: "status"}); !d.Allowed {
		t.Fatalf("final decision %+v", d)
	}
}

func ptr(s string) *string { return &s }
