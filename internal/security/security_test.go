package security

import (
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/marionette/mco/internal/pki"
)

// testPKI is a CA with a helper to issue identities under it.
type testPKI struct {
	t  *testing.T
	ca *pki.CA
}

func newTestPKI(t *testing.T, name string) *testPKI {
	t.Helper()
	ca, err := pki.NewCA(name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{t: t, ca: ca}
}

func (p *testPKI) identity(role pki.Role, name string) *Identity {
	p.t.Helper()
	cert, key, err := p.ca.Issue(pki.LeafRequest{Name: name, Role: role})
	if err != nil {
		p.t.Fatal(err)
	}
	return &Identity{Cert: cert, Key: key}
}

func (p *testPKI) verifier(opts VerifierOptions) *Verifier {
	p.t.Helper()
	opts.CA = p.ca.Cert
	v, err := NewVerifier(opts)
	if err != nil {
		p.t.Fatal(err)
	}
	return v
}

func matcher(t *testing.T, list string) *Matcher {
	t.Helper()
	m, err := ParseMatcher(list)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestVerifier(t *testing.T) {
	ours := newTestPKI(t, "ours")
	theirs := newTestPKI(t, "theirs")
	alice := ours.identity(pki.RoleClient, "alice.mcollective")
	bob := ours.identity(pki.RoleClient, "bob")
	opsClient := ours.identity(pki.RoleClient, "ops-7")
	node := ours.identity(pki.RoleNode, "web1")
	foreign := theirs.identity(pki.RoleClient, "alice.mcollective")
	foreignNode := theirs.identity(pki.RoleNode, "web1")
	msg := []byte(`{"agent":"rpcutil"}`)
	later := func() time.Time { return time.Now().Add(pki.LeafValidity + 24*time.Hour) }
	earlier := func() time.Time { return time.Now().Add(-48 * time.Hour) }

	tests := []struct {
		name    string
		opts    VerifierOptions
		id      *Identity
		role    pki.Role
		msg     []byte // what is verified; nil means the signed msg
		revoke  bool
		wantErr error // nil: accepted
		errText string
	}{
		{name: "client of our CA", id: alice, role: pki.RoleClient},
		{name: "node of our CA", id: node, role: pki.RoleNode},
		{name: "client of another CA", id: foreign, role: pki.RoleClient, wantErr: ErrUntrusted},
		{name: "node of another CA", id: foreignNode, role: pki.RoleNode, wantErr: ErrUntrusted},
		{name: "node cert used as client", id: node, role: pki.RoleClient, wantErr: ErrUntrusted, errText: "node certificate, not a client"},
		{name: "client cert used as node", id: alice, role: pki.RoleNode, wantErr: ErrUntrusted, errText: "client certificate, not a node"},
		{name: "expired", opts: VerifierOptions{Now: later}, id: alice, role: pki.RoleClient, wantErr: ErrUntrusted, errText: "not valid at"},
		{name: "not yet valid", opts: VerifierOptions{Now: earlier}, id: alice, role: pki.RoleClient, wantErr: ErrUntrusted, errText: "not valid at"},
		{name: "revoked", id: alice, role: pki.RoleClient, revoke: true, wantErr: ErrUntrusted, errText: "revoked"},
		{name: "default allow list refuses", id: bob, role: pki.RoleClient, wantErr: ErrUntrusted, errText: "allow list"},
		{name: "allow list ignores nodes", id: ours.identity(pki.RoleNode, "no-suffix"), role: pki.RoleNode},
		{name: "custom list exact", opts: VerifierOptions{Allowlist: matcher(t, "bob, /^ops-[0-9]+$/")}, id: bob, role: pki.RoleClient},
		{name: "custom list regex", opts: VerifierOptions{Allowlist: matcher(t, "bob, /^ops-[0-9]+$/")}, id: opsClient, role: pki.RoleClient},
		{name: "custom list replaces default", opts: VerifierOptions{Allowlist: matcher(t, "bob, /^ops-[0-9]+$/")}, id: alice, role: pki.RoleClient, wantErr: ErrUntrusted, errText: "allow list"},
		{name: "forged signature", id: alice, role: pki.RoleClient, msg: []byte(`{"agent":"shell"}`), wantErr: ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := ours.verifier(tt.opts)
			if tt.revoke {
				v.SetRevoked(map[string]bool{tt.id.Cert.SerialNumber.Text(16): true})
			}
			verified := tt.msg
			if verified == nil {
				verified = msg
			}
			cert, err := v.Verify(tt.id.Cert.Raw, verified, tt.id.Sign(msg), tt.role)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if cert.Subject.CommonName != tt.id.Name() {
					t.Errorf("verified %q, want %q", cert.Subject.CommonName, tt.id.Name())
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("error %q does not say %q", err, tt.errText)
			}
		})
	}
}

// The chain verification is cached; revocation, validity and role must still
// be checked every time.
func TestVerifierCacheDoesNotBypassChecks(t *testing.T) {
	ours := newTestPKI(t, "ours")
	alice := ours.identity(pki.RoleClient, "alice.mcollective")
	now := time.Now()
	v := ours.verifier(VerifierOptions{Now: func() time.Time { return now }})
	if _, err := v.Certificate(alice.Cert.Raw, pki.RoleClient); err != nil {
		t.Fatal(err)
	}
	v.SetRevoked(map[string]bool{alice.Cert.SerialNumber.Text(16): true})
	if _, err := v.Certificate(alice.Cert.Raw, pki.RoleClient); err == nil {
		t.Error("a revoked certificate was accepted from the cache")
	}
	v.SetRevoked(map[string]bool{})
	if _, err := v.Certificate(alice.Cert.Raw, pki.RoleNode); err == nil {
		t.Error("a cached client certificate was accepted as a node")
	}
	now = alice.Cert.NotAfter.Add(time.Second)
	if _, err := v.Certificate(alice.Cert.Raw, pki.RoleClient); err == nil {
		t.Error("an expired certificate was accepted from the cache")
	}
}

func TestVerifierRejectsOddCertificates(t *testing.T) {
	ours := newTestPKI(t, "ours")
	v := ours.verifier(VerifierOptions{})
	if _, err := v.Certificate([]byte("garbage"), pki.RoleClient); !errors.Is(err, ErrUntrusted) {
		t.Errorf("garbage DER: %v", err)
	}
	if _, err := v.Certificate(ours.ca.Cert.Raw, pki.RoleClient); !errors.Is(err, ErrUntrusted) {
		t.Errorf("the CA itself as a client: %v", err)
	}
	if _, err := NewVerifier(VerifierOptions{}); err == nil {
		t.Error("NewVerifier without a CA succeeded")
	}
}

func TestCheckCaller(t *testing.T) {
	ours := newTestPKI(t, "ours")
	v := ours.verifier(VerifierOptions{})
	custom := ours.verifier(VerifierOptions{Privileged: matcher(t, "root.mcollective")})
	alice := ours.identity(pki.RoleClient, "alice.mcollective").Cert
	admin := ours.identity(pki.RoleClient, "admin.privileged.mcollective").Cert
	root := ours.identity(pki.RoleClient, "root.mcollective").Cert
	tests := []struct {
		name   string
		v      *Verifier
		cert   *x509.Certificate
		caller string
		ok     bool
	}{
		{"own id", v, alice, "cert=alice.mcollective", true},
		{"other id", v, alice, "cert=bob.mcollective", false},
		{"bare name", v, alice, "alice.mcollective", false},
		{"empty", v, alice, "", false},
		{"privileged acts for others", v, admin, "cert=bob.mcollective", true},
		{"custom privileged list", custom, root, "cert=bob.mcollective", true},
		{"custom list replaces default", custom, admin, "cert=bob.mcollective", false},
	}
	for _, tt := range tests {
		err := tt.v.CheckCaller(tt.cert, tt.caller)
		if (err == nil) != tt.ok {
			t.Errorf("%s: CheckCaller = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrUntrusted) {
			t.Errorf("%s: error %v does not wrap ErrUntrusted", tt.name, err)
		}
	}
}

func TestParseMatcher(t *testing.T) {
	tests := []struct {
		list    string
		match   []string
		nomatch []string
		wantErr bool
	}{
		{list: DefaultAllowlist, match: []string{"a.mcollective"}, nomatch: []string{"mcollective", "a.mcollective.evil", "amcollective"}},
		{list: "bob, jill , /^ops-/", match: []string{"bob", "jill", "ops-1"}, nomatch: []string{"bobby", "x-ops-1", ""}},
		{list: "", nomatch: []string{"", "bob"}},
		{list: " , ,", nomatch: []string{""}},
		{list: "/", match: []string{"/"}}, // a lone slash is a name, not a pattern
		{list: "/[/", wantErr: true},
		{list: "ok, /(unclosed/", wantErr: true},
	}
	for _, tt := range tests {
		m, err := ParseMatcher(tt.list)
		if tt.wantErr {
			if err == nil {
				t.Errorf("ParseMatcher(%q) succeeded", tt.list)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseMatcher(%q): %v", tt.list, err)
			continue
		}
		for _, n := range tt.match {
			if !m.Match(n) {
				t.Errorf("%q should match %q", tt.list, n)
			}
		}
		for _, n := range tt.nomatch {
			if m.Match(n) {
				t.Errorf("%q should not match %q", tt.list, n)
			}
		}
	}
	var nilMatcher *Matcher
	if nilMatcher.Match("x") {
		t.Error("a nil matcher matched")
	}
}

func TestLoadIdentity(t *testing.T) {
	ours := newTestPKI(t, "ours")
	dir := t.TempDir()
	a := ours.identity(pki.RoleClient, "a.mcollective")
	b := ours.identity(pki.RoleClient, "b.mcollective")
	write := func(name string, f func(string) error) string {
		p := filepath.Join(dir, name)
		if err := f(p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	aCert := write("a.crt", func(p string) error { return pki.WriteCert(p, a.Cert) })
	aKey := write("a.key", func(p string) error { return pki.WriteKey(p, a.Key) })
	bKey := write("b.key", func(p string) error { return pki.WriteKey(p, b.Key) })
	id, err := LoadIdentity(aCert, aKey)
	if err != nil {
		t.Fatal(err)
	}
	if id.Name() != "a.mcollective" || !ed25519.Verify(id.Cert.PublicKey.(ed25519.PublicKey), []byte("m"), id.Sign([]byte("m"))) {
		t.Error("loaded identity does not sign for its certificate")
	}
	if _, err := LoadIdentity(aCert, bKey); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Errorf("mismatched key: %v", err)
	}
	if _, err := LoadIdentity(filepath.Join(dir, "missing.crt"), aKey); err == nil {
		t.Error("missing certificate accepted")
	}
	if _, err := os.Stat(aKey); err != nil {
		t.Fatal(err)
	}
}
