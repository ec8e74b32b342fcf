package pki

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newTestCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA("test CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func rootsOf(ca *CA) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

func TestNewCA(t *testing.T) {
	ca := newTestCA(t)
	c := ca.Cert
	if !c.IsCA || !c.BasicConstraintsValid || !c.MaxPathLenZero {
		t.Errorf("CA constraints: IsCA=%v valid=%v maxPathLenZero=%v", c.IsCA, c.BasicConstraintsValid, c.MaxPathLenZero)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Error("CA lacks the CertSign key usage")
	}
	if c.Subject.CommonName != "test CA" {
		t.Errorf("CA name %q", c.Subject.CommonName)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}
	if !c.PublicKey.(ed25519.PublicKey).Equal(ca.Key.Public()) {
		t.Error("CA key does not match its certificate")
	}
	if _, err := RoleOf(c); err == nil {
		t.Error("the CA carries a Marionette role; it should have none")
	}
}

func TestIssueCarriesRole(t *testing.T) {
	ca := newTestCA(t)
	tests := []struct {
		role   Role
		name   string
		hosts  []string
		usages []x509.ExtKeyUsage
	}{
		{RoleClient, "alice.mcollective", nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{RoleNode, "web1.example.net", nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{RoleBroker, "broker1", []string{"127.0.0.1", "mq.example.net"}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}},
	}
	for _, tt := range tests {
		t.Run(string(tt.role), func(t *testing.T) {
			cert, key, err := ca.Issue(LeafRequest{Name: tt.name, Role: tt.role, Hosts: tt.hosts})
			if err != nil {
				t.Fatal(err)
			}
			role, err := RoleOf(cert)
			if err != nil || role != tt.role {
				t.Fatalf("RoleOf = %q, %v; want %q", role, err, tt.role)
			}
			if cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign != 0 {
				t.Error("a leaf must not be a CA nor carry CertSign")
			}
			if cert.Subject.CommonName != tt.name {
				t.Errorf("name %q, want %q", cert.Subject.CommonName, tt.name)
			}
			if len(cert.ExtKeyUsage) != len(tt.usages) {
				t.Errorf("ext key usages %v, want %v", cert.ExtKeyUsage, tt.usages)
			}
			if !cert.PublicKey.(ed25519.PublicKey).Equal(key.Public()) {
				t.Error("issued key does not match the certificate")
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: rootsOf(ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Errorf("leaf does not verify against its CA: %v", err)
			}
			if !cert.NotAfter.Before(ca.Cert.NotAfter) {
				t.Error("leaf outlives its CA")
			}
			if tt.role == RoleBroker {
				if err := cert.VerifyHostname("127.0.0.1"); err != nil {
					t.Error(err)
				}
				if err := cert.VerifyHostname("mq.example.net"); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func TestIssueRejectsBadRequests(t *testing.T) {
	ca := newTestCA(t)
	for _, req := range []LeafRequest{
		{Name: "ok.name", Role: "admin"},
		{Name: "", Role: RoleClient},
		{Name: "../evil", Role: RoleClient},
	} {
		if _, _, err := ca.Issue(req); err == nil {
			t.Errorf("Issue(%+v) succeeded", req)
		}
	}
}

func TestRoleOfMalformedExtension(t *testing.T) {
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "x"}, Extensions: []pkix.Extension{{Id: RoleOID, Value: []byte{0xff}}}}
	if _, err := RoleOf(cert); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("RoleOf(garbage extension) = %v", err)
	}
}

// TestLeafCannotSign signs a certificate with a leaf as issuer and shows that
// the chain leaf → CA does not verify: leaves are not CAs.
func TestLeafCannotSign(t *testing.T) {
	ca := newTestCA(t)
	leaf, leafKey, err := ca.Issue(LeafRequest{Name: "mallory.mcollective", Role: RoleClient})
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: "forged.mcollective"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		// The leaf's own role extension, so only the issuer is wrong.
		ExtraExtensions: []pkix.Extension{roleExtension(leaf)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, leaf, pub, leafKey)
	if err != nil {
		// Refusing to sign with a leaf at all is fine too.
		t.Logf("CreateCertificate refused a leaf issuer: %v", err)
		return
	}
	forged, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	inter.AddCert(leaf)
	_, err = forged.Verify(x509.VerifyOptions{Roots: rootsOf(ca), Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err == nil {
		t.Fatal("a certificate signed by a leaf verified against the CA")
	}
}

func roleExtension(cert *x509.Certificate) pkix.Extension {
	for _, e := range cert.Extensions {
		if e.Id.Equal(RoleOID) {
			return e
		}
	}
	return pkix.Extension{}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"alice.mcollective", true},
		{"web-01_a.example.net", true},
		{"A", true},
		{"", false},
		{".hidden", false},
		{"trailing.", false},
		{"has space", false},
		{"slash/name", false},
		{"../etc", false},
		{"star*", false},
		{"wild>card", false},
		{"ünïcode", false},
		{strings.Repeat("a", 253), true},
		{strings.Repeat("a", 254), false},
	}
	for _, tt := range tests {
		err := ValidName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func newStore(t *testing.T) (Store, *CA) {
	t.Helper()
	st := Store{Dir: filepath.Join(t.TempDir(), "pki")}
	ca, err := st.Init("store CA")
	if err != nil {
		t.Fatal(err)
	}
	return st, ca
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestStoreInitRefusesOverwrite(t *testing.T) {
	st, ca := newStore(t)
	before, err := os.ReadFile(st.CACertPath())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Init("another CA"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second Init = %v, want a refusal", err)
	}
	after, _ := os.ReadFile(st.CACertPath())
	if string(before) != string(after) {
		t.Fatal("second Init replaced the CA certificate")
	}
	loaded, err := st.CA()
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(ca.Cert) || !loaded.Key.Equal(ca.Key) {
		t.Error("loaded CA differs from the created one")
	}
}

func TestStoreKeyFilesArePrivate(t *testing.T) {
	st, _ := newStore(t)
	if _, err := st.Issue(RoleNode, "node1", nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{st.caKeyPath(), st.KeyPath("node1")} {
		if m := fileMode(t, p); m != 0o600 {
			t.Errorf("%s has mode %o, want 600", p, m)
		}
	}
	if m := fileMode(t, filepath.Join(st.Dir, "private")); m&0o077 != 0 {
		t.Errorf("private/ has mode %o, want no group/other access", m)
	}
	// WriteKey never overwrites an existing key.
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	if err := WriteKey(st.KeyPath("node1"), key); err == nil {
		t.Error("WriteKey replaced an existing key")
	}
}

func TestStoreIssueAndLoad(t *testing.T) {
	st, _ := newStore(t)
	cert, err := st.Issue(RoleClient, "alice.mcollective", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Issue(RoleClient, "alice.mcollective", nil); err == nil {
		t.Error("issuing the same name twice succeeded")
	}
	if _, err := st.Issue(RoleClient, "bad/name", nil); err == nil {
		t.Error("issuing a bad name succeeded")
	}
	got, err := ReadCert(st.CertPath("alice.mcollective"))
	if err != nil || !got.Equal(cert) {
		t.Fatalf("ReadCert = %v, %v", got, err)
	}
	key, err := ReadKey(st.KeyPath("alice.mcollective"))
	if err != nil || !cert.PublicKey.(ed25519.PublicKey).Equal(key.Public()) {
		t.Fatalf("ReadKey: %v (or key does not match)", err)
	}
}

func TestStoreWithoutCA(t *testing.T) {
	st := Store{Dir: t.TempDir()}
	if _, err := st.Issue(RoleNode, "node1", nil); err == nil || !strings.Contains(err.Error(), "pki init") {
		t.Errorf("Issue without a CA = %v, want a hint to run pki init", err)
	}
}

func TestReadBadFiles(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadCert(garbage); err == nil || !strings.Contains(err.Error(), garbage) {
		t.Errorf("ReadCert(garbage) = %v, want an error naming the file", err)
	}
	if _, err := ReadKey(garbage); err == nil || !strings.Contains(err.Error(), garbage) {
		t.Errorf("ReadKey(garbage) = %v, want an error naming the file", err)
	}
	if _, err := ReadCert(filepath.Join(dir, "missing")); err == nil {
		t.Error("ReadCert(missing) succeeded")
	}
}

func TestListRevokeReadRevoked(t *testing.T) {
	st, _ := newStore(t)
	for _, n := range []struct {
		role Role
		name string
	}{{RoleNode, "web2"}, {RoleClient, "alice.mcollective"}, {RoleNode, "web1"}} {
		if _, err := st.Issue(n.role, n.name, nil); err != nil {
			t.Fatal(err)
		}
	}
	revoked, err := st.Revoke("web1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Revoke("ghost"); err == nil {
		t.Error("revoking an unknown name succeeded")
	}
	list, err := st.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range list {
		names = append(names, e.Name)
		if e.Revoked != (e.Name == "web1") {
			t.Errorf("%s: Revoked = %v", e.Name, e.Revoked)
		}
	}
	if got := strings.Join(names, ","); got != "alice.mcollective,web1,web2" {
		t.Errorf("List order %s", got)
	}
	if list[0].Role != RoleClient || list[1].Role != RoleNode {
		t.Errorf("roles %q %q", list[0].Role, list[1].Role)
	}
	serials, err := ReadRevoked(st.RevokedPath())
	if err != nil {
		t.Fatal(err)
	}
	if len(serials) != 1 || !serials[revoked.SerialNumber.Text(16)] {
		t.Errorf("ReadRevoked = %v, want the serial of web1 %s", serials, revoked.SerialNumber.Text(16))
	}
}

func TestReadRevoked(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    []string
		wantErr string // substring; ":<line>:" is checked with the path
	}{
		{name: "empty", body: "", want: nil},
		{name: "comments and names", body: "# revoked\n\n  ABCD01 web1\n00ff mallory\n", want: []string{"abcd01", "ff"}},
		{name: "crlf", body: "abc web1\r\ndef\r\n", want: []string{"abc", "def"}},
		{name: "bad hex", body: "abc web1\n# ok\nxyz web2\n", wantErr: ":3:"},
		{name: "serial with dash", body: "12-34\n", wantErr: ":1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "revoked.txt")
			if err := os.WriteFile(path, []byte(tt.body), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadRevoked(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), path+tt.wantErr) {
					t.Fatalf("ReadRevoked = %v, want an error naming %s%s", err, path, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for _, sn := range tt.want {
				if !got[sn] {
					t.Errorf("serial %s missing from %v", sn, got)
				}
			}
		})
	}
	got, err := ReadRevoked(filepath.Join(t.TempDir(), "missing"))
	if err != nil || len(got) != 0 {
		t.Errorf("missing file: %v, %v; want nothing revoked", got, err)
	}
}

func TestCSRFlowKeepsKeyOut(t *testing.T) {
	st, ca := newStore(t)
	csrPEM, key, err := NewCSR("web3.example.net")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(csrPEM), "PRIVATE KEY") {
		t.Fatal("the CSR contains a private key")
	}
	cert, err := st.SignCSR(RoleNode, csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.PublicKey.(ed25519.PublicKey).Equal(key.Public()) {
		t.Error("signed certificate is not for the requester's key")
	}
	if role, _ := RoleOf(cert); role != RoleNode {
		t.Errorf("role %q", role)
	}
	if err := cert.CheckSignatureFrom(ca.Cert); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(st.KeyPath("web3.example.net")); !os.IsNotExist(err) {
		t.Errorf("the store holds a private key for a CSR-signed certificate (stat: %v)", err)
	}
	if _, err := os.Stat(st.CertPath("web3.example.net")); err != nil {
		t.Errorf("signed certificate not stored: %v", err)
	}
	if _, err := st.SignCSR(RoleNode, csrPEM); err == nil {
		t.Error("signing the same name twice succeeded")
	}
}

func TestSignCSRRejectsBadInput(t *testing.T) {
	st, _ := newStore(t)
	good, _, err := NewCSR("web4")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(good)
	tampered := append([]byte(nil), block.Bytes...)
	tampered[len(tampered)-1] ^= 0xff // flip a signature bit
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	badName, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "bad name"}}, other)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   []byte
		role Role
	}{
		{"not pem", []byte("hello"), RoleNode},
		{"wrong pem type", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes}), RoleNode},
		{"garbage der", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1, 2, 3}}), RoleNode},
		{"bad signature", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered}), RoleNode},
		{"bad name", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: badName}), RoleNode},
		{"bad role", good, "root"},
	}
	for _, tt := range tests {
		if _, err := st.SignCSR(tt.role, tt.in); err == nil {
			t.Errorf("%s: SignCSR succeeded", tt.name)
		}
	}
	if _, _, err := NewCSR("no/slash"); err == nil {
		t.Error("NewCSR accepted a bad name")
	}
}
