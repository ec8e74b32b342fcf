package registration

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/marionette/mco/filter"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/protocol"
)

// pkiFixture is a CA with a verifier and a way to get identities.
type pkiFixture struct {
	t        *testing.T
	store    pki.Store
	verifier *security.Verifier
}

func newPKI(t *testing.T) *pkiFixture {
	t.Helper()
	st := pki.Store{Dir: filepath.Join(t.TempDir(), "pki")}
	ca, err := st.Init("test CA")
	if err != nil {
		t.Fatal(err)
	}
	v, err := security.NewVerifier(security.VerifierOptions{CA: ca.Cert})
	if err != nil {
		t.Fatal(err)
	}
	return &pkiFixture{t: t, store: st, verifier: v}
}

func (p *pkiFixture) identity(role pki.Role, name string) *security.Identity {
	p.t.Helper()
	if _, err := p.store.Issue(role, name, nil); err != nil {
		p.t.Fatal(err)
	}
	id, err := security.LoadIdentity(p.store.CertPath(name), p.store.KeyPath(name))
	if err != nil {
		p.t.Fatal(err)
	}
	return id
}

// fakeSource is a node's state.
type fakeSource struct {
	mu     sync.Mutex
	id     string
	agents []string
	facts  map[string]any
}

func (f *fakeSource) Identity() string      { return f.id }
func (f *fakeSource) Collectives() []string { return []string{"mcollective", "eu"} }
func (f *fakeSource) AgentNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.agents
}
func (f *fakeSource) Facts() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.facts
}
func (f *fakeSource) Classes() []string { return []string{"role::web"} }
func (f *fakeSource) Version() string   { return "1.2.3" }

func announcement(id string, at time.Time) *protocol.Registration {
	return Build(&fakeSource{id: id, agents: []string{"rpcutil", "package"},
		facts: map[string]any{"role": "web", "os": map[string]any{"family": "Debian"}, "cpus": 4}}, at, time.Minute)
}

func seal(t *testing.T, id *security.Identity, r *protocol.Registration) []byte {
	t.Helper()
	data, err := Seal(id, r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestOpen(t *testing.T) {
	p := newPKI(t)
	web1 := p.identity(pki.RoleNode, "web1.example.com")
	alice := p.identity(pki.RoleClient, "alice.mcollective")
	other := newPKI(t).identity(pki.RoleNode, "web1.example.com") // same name, foreign CA
	now := time.Now()

	good := seal(t, web1, announcement("web1.example.com", now))
	tampered := func() []byte {
		var env protocol.SecureRegistration
		if err := json.Unmarshal(good, &env); err != nil {
			t.Fatal(err)
		}
		env.Registration = []byte(strings.Replace(string(env.Registration), `"web"`, `"db"`, 1))
		data, _ := json.Marshal(&env)
		return data
	}()
	wrongProtocol := func() []byte {
		r := announcement("web1.example.com", now)
		r.Protocol = "marionette.registration.99"
		return seal(t, web1, r)
	}()

	tests := []struct {
		name    string
		data    []byte
		wantErr string // "" = accepted
	}{
		{"signed by its node", good, ""},
		{"body changed after signing", tampered, "signature does not verify"},
		{"identity differs from the certificate", seal(t, web1, announcement("db1.example.com", now)), `claims identity "db1.example.com" but is signed by "web1.example.com"`},
		{"signed by a client certificate", seal(t, alice, announcement("alice.mcollective", now)), "not a node"},
		{"certificate from another CA", seal(t, other, announcement("web1.example.com", now)), "untrusted"},
		{"unknown announcement protocol", wrongProtocol, "unknown announcement protocol"},
		{"not JSON", []byte("{"), "undecodable envelope"},
		{"unknown envelope", []byte(`{"protocol":"x"}`), "unknown envelope protocol"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Open(p.verifier, tt.data)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if r.Identity != "web1.example.com" || r.Facts["role"] != "web" || len(r.Agents) != 2 || r.Version != "1.2.3" || r.Interval != 60 {
					t.Errorf("Open = %+v", r)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Open error = %v, want ErrRejected containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidIdentity(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"web1.example.com", true},
		{"node_1-a@b", true},
		{"", false},
		{".", false},
		{"..", false},
		{"../etc/passwd", false},
		{"a/b", false},
		{`a\b`, false},
		{".hidden", false},
		{"a b", false},
		{"a\x00b", false},
		{strings.Repeat("a", 254), false},
		{strings.Repeat("a", 253), true},
		{"_a", true},
		{"-a", false},
		{"@a", false},
		{"a.", true},
		{"é", false},
		{"a\n", false},
	}
	// The rule as the regular expression it replaced (kept out of the
	// binary's start-up): both must agree on every case.
	re := regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,252}$`)
	for _, tt := range tests {
		if err := ValidIdentity(tt.id); (err == nil) != tt.ok {
			t.Errorf("ValidIdentity(%q) = %v, want ok=%v", tt.id, err, tt.ok)
		}
		if got := re.MatchString(tt.id); got != tt.ok {
			t.Errorf("the regular expression says %v for %q, the table %v", got, tt.id, tt.ok)
		}
	}
}

func FuzzValidIdentity(f *testing.F) {
	f.Add("web1.example.com")
	f.Add("..")
	re := regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,252}$`)
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := ValidIdentity(id) == nil, re.MatchString(id); got != want {
			t.Errorf("ValidIdentity(%q) ok=%v, the regular expression says %v", id, got, want)
		}
	})
}

func TestStoreRefusesTraversal(t *testing.T) {
	dir := t.TempDir()
	st := Store{Dir: filepath.Join(dir, "store")}
	if err := os.MkdirAll(st.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"../outside", "..", "sub/node", ""} {
		rec := &Record{Registration: protocol.Registration{Identity: id}}
		if err := st.Save(rec); err == nil {
			t.Errorf("Save(%q) succeeded", id)
		}
		if _, err := st.Load(id); err == nil {
			t.Errorf("Load(%q) succeeded", id)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("files appeared next to the store: %v", entries)
	}
}

func TestCollector(t *testing.T) {
	p := newPKI(t)
	web1 := p.identity(pki.RoleNode, "web1.example.com")
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	dir := filepath.Join(t.TempDir(), "inventory")
	col, err := NewCollector(dir, p.verifier, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name    string
		subject string
		at      time.Time
		wantErr string
	}{
		{"first announcement", "web1.example.com", now.Add(-time.Minute), ""},
		{"newer one replaces it", "web1.example.com", now, ""},
		{"older one is a replay", "web1.example.com", now.Add(-time.Second), "older than the stored one"},
		{"same one again (second collective)", "web1.example.com", now, ""},
		{"far in the future", "web1.example.com", now.Add(time.Hour), "in the future"},
		{"on another node's subject", "web2.example.com", now, `arrived on the subject of "web2.example.com"`},
	}
	for _, s := range steps {
		_, err := col.Handle("mcollective", s.subject, seal(t, web1, announcement("web1.example.com", s.at)))
		if s.wantErr == "" && err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)) {
			t.Fatalf("%s: error %v, want %q", s.name, err, s.wantErr)
		}
	}
	if st := col.Stats(); st.Stored != 3 || st.Rejected != 3 {
		t.Errorf("Stats = %+v, want 3 stored, 3 rejected", st)
	}

	recs, problems, err := Store{Dir: dir}.List()
	if err != nil || len(problems) != 0 || len(recs) != 1 {
		t.Fatalf("List = %v, %v, %v; want one record", recs, problems, err)
	}
	r := recs[0]
	if r.Identity != "web1.example.com" || !r.Created().Equal(now) || !r.LastSeen.Equal(now) {
		t.Errorf("stored %+v, want the announcement of %s seen at %s", r, now, now)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("store holds %d files, want 1 (temporary files left behind?)", len(entries))
	}
}

func TestListSkipsBrokenFiles(t *testing.T) {
	dir := t.TempDir()
	st := Store{Dir: dir}
	if err := st.Save(&Record{Registration: protocol.Registration{Identity: "good.example.com"}}); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"broken.example.com.json":  "{",
		"renamed.example.com.json": `{"identity":"other"}`,
		".tmp.json":                "{",
		"notes.txt":                "hello",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	recs, problems, err := st.List()
	if err != nil || len(recs) != 1 || recs[0].Identity != "good.example.com" || len(problems) != 2 {
		t.Fatalf("List = %d records, problems %v, err %v; want good.example.com and 2 problems", len(recs), problems, err)
	}
}

func TestRecordNodeMatchesFilters(t *testing.T) {
	rec := &Record{Registration: *announcement("web1.example.com", time.Now())}
	tests := []struct {
		name string
		flt  func() *filter.Filter
		want bool
	}{
		{"fact", func() *filter.Filter { return &filter.Filter{Fact: []filter.FactFilter{mustFact(t, "role=web")}} }, true},
		{"nested fact", func() *filter.Filter {
			return &filter.Filter{Fact: []filter.FactFilter{mustFact(t, "os.family=Debian")}}
		}, true},
		{"numeric fact", func() *filter.Filter { return &filter.Filter{Fact: []filter.FactFilter{mustFact(t, "cpus>2")}} }, true},
		{"other fact value", func() *filter.Filter { return &filter.Filter{Fact: []filter.FactFilter{mustFact(t, "role=db")}} }, false},
		{"class", func() *filter.Filter { return &filter.Filter{Class: []string{"role::web"}} }, true},
		{"agent", func() *filter.Filter { return &filter.Filter{Agent: []string{"package"}} }, true},
		{"missing agent", func() *filter.Filter { return &filter.Filter{Agent: []string{"service"}} }, false},
		{"identity regex", func() *filter.Filter { return &filter.Filter{Identity: []string{"/^web/"}} }, true},
		{"data function is false", func() *filter.Filter {
			return &filter.Filter{Compound: []*filter.Expr{mustCompound(t, "fstat('/etc/issue').size>0")}}
		}, false},
	}
	for _, tt := range tests {
		if got := tt.flt().Match(t.Context(), rec.Node()); got != tt.want {
			t.Errorf("%s: Match = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func mustFact(t *testing.T, s string) filter.FactFilter {
	t.Helper()
	f, err := filter.ParseFact(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mustCompound(t *testing.T, s string) *filter.Expr {
	t.Helper()
	e, err := filter.ParseCompound(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestPublisher: an announcement at start on every collective, then one per
// trigger (agents changed) and per facts change; each verifies.
func TestPublisher(t *testing.T) {
	p := newPKI(t)
	id := p.identity(pki.RoleNode, "web1.example.com")
	src := &fakeSource{id: "web1.example.com", agents: []string{"rpcutil"}, facts: map[string]any{"role": "web"}}
	type msg struct {
		subject string
		data    []byte
	}
	sent := make(chan msg, 16)
	var factsMu sync.Mutex
	factsCh := make(chan struct{})
	pub := NewPublisher(PublisherOptions{
		Identity: id, Source: src,
		Publish: func(subject string, data []byte) error { sent <- msg{subject, data}; return nil },
		FactsChanged: func() <-chan struct{} {
			factsMu.Lock()
			defer factsMu.Unlock()
			return factsCh
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { pub.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// next waits for the announcement on both collectives and returns it.
	next := func(what string) *protocol.Registration {
		t.Helper()
		var r *protocol.Registration
		for _, c := range []string{"mcollective", "eu"} {
			select {
			case m := <-sent:
				if want := protocol.RegistrationSubject(c, "web1.example.com"); m.subject != want {
					t.Fatalf("%s: published on %s, want %s", what, m.subject, want)
				}
				var err error
				if r, err = Open(p.verifier, m.data); err != nil {
					t.Fatalf("%s: %v", what, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: no announcement", what)
			}
		}
		return r
	}
	if r := next("start"); len(r.Agents) != 1 {
		t.Errorf("start: agents %v", r.Agents)
	}

	src.mu.Lock()
	src.agents = []string{"rpcutil", "package"}
	src.mu.Unlock()
	pub.Trigger()
	if r := next("trigger"); len(r.Agents) != 2 {
		t.Errorf("after Trigger: agents %v, want 2", r.Agents)
	}

	src.mu.Lock()
	src.facts = map[string]any{"role": "db"}
	src.mu.Unlock()
	factsMu.Lock()
	close(factsCh)
	factsCh = make(chan struct{})
	factsMu.Unlock()
	if r := next("facts change"); r.Facts["role"] != "db" {
		t.Errorf("after a facts change: facts %v", r.Facts)
	}
}

// TestPublisherInterval: with an interval, announcements keep coming
// without any change.
func TestPublisherInterval(t *testing.T) {
	p := newPKI(t)
	id := p.identity(pki.RoleNode, "web1.example.com")
	sent := make(chan string, 64)
	pub := NewPublisher(PublisherOptions{
		Identity: id, Source: &fakeSource{id: "web1.example.com"}, Interval: 10 * time.Millisecond,
		Publish: func(subject string, _ []byte) error {
			select {
			case sent <- subject:
			default:
			}
			return nil
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { pub.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for i := range 6 { // start (2 collectives) and two periodic rounds
		select {
		case <-sent:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d announcements", i)
		}
	}
}

// TestCollectorTrustsHeardCollectives: a node is in a collective for
// inventory discovery only if it claims it and its announcements were heard
// there (the broker limits where a node may publish).
func TestCollectorTrustsHeardCollectives(t *testing.T) {
	p := newPKI(t)
	web1 := p.identity(pki.RoleNode, "web1.example.com")
	col, err := NewCollector(t.TempDir(), p.verifier, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	reg := announcement("web1.example.com", time.Now())
	reg.Collectives = []string{"dev", "prod"}
	rec, err := col.Handle("dev", "web1.example.com", seal(t, web1, reg))
	if err != nil {
		t.Fatal(err)
	}
	if !rec.InCollective("dev") || rec.InCollective("prod") {
		t.Fatalf("after dev only: dev %v prod %v, want true false", rec.InCollective("dev"), rec.InCollective("prod"))
	}
	if rec, err = col.Handle("prod", "web1.example.com", seal(t, web1, reg)); err != nil {
		t.Fatal(err)
	}
	if !rec.InCollective("dev") || !rec.InCollective("prod") {
		t.Fatalf("after dev and prod: heard on %v", rec.HeardOn)
	}
}
