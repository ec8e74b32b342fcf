package security

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/marionette/mco/internal/pki"
)

// TestWatchRevocationsKeepsListWhenFileVanishes: deleting (or breaking) the
// revocation file must not un-revoke anybody; a fixed file is picked up.
func TestWatchRevocationsKeepsListWhenFileVanishes(t *testing.T) {
	ca, err := pki.NewCA("t", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := ca.Issue(pki.LeafRequest{Name: "bob.mcollective", Role: pki.RoleClient})
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(VerifierOptions{CA: ca.Cert})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "revoked.txt")
	if err := os.WriteFile(path, []byte(cert.SerialNumber.Text(16)+" bob\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reloads := make(chan struct{}, 10)
	done := make(chan error, 1)
	go func() {
		done <- WatchRevocations(ctx, path, v, 10*time.Millisecond, nil, func() { reloads <- struct{}{} })
	}()
	<-reloads // the initial load
	if !v.IsRevoked(cert) {
		t.Fatal("bob not revoked after the initial load")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // several watch periods
	if !v.IsRevoked(cert) {
		t.Fatal("deleting the revocation file un-revoked bob")
	}
	if err := os.WriteFile(path, []byte("not-hex\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // several watch periods; nothing may change
	if !v.IsRevoked(cert) {
		t.Fatal("a broken revocation file un-revoked bob")
	}
	if err := os.WriteFile(path, []byte("# nobody\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reloads:
	case <-time.After(5 * time.Second):
		t.Fatal("a fixed revocation file was not reloaded")
	}
	if v.IsRevoked(cert) {
		t.Fatal("an emptied list still revokes bob")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestExpiredCARefused: the CA's own validity is checked on every use.
func TestExpiredCARefused(t *testing.T) {
	ca, err := pki.NewCA("t", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := ca.Issue(pki.LeafRequest{Name: "alice.mcollective", Role: pki.RoleClient})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	v, err := NewVerifier(VerifierOptions{CA: ca.Cert, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Certificate(cert.Raw, pki.RoleClient); err != nil {
		t.Fatalf("valid today: %v", err)
	}
	now = ca.Cert.NotAfter.Add(time.Hour) // the leaf is also expired by then; check the CA is named
	if _, err := v.Certificate(cert.Raw, pki.RoleClient); err == nil || !strings.Contains(err.Error(), "the CA") {
		t.Fatalf("after the CA expired: %v", err)
	}
}

// TestSignatureCacheNeverWidens: a remembered signature check neither lets a
// different signature over the same message through, nor outlives the
// certificate's revocation.
func TestSignatureCacheNeverWidens(t *testing.T) {
	ca, err := pki.NewCA("t", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue(pki.LeafRequest{Name: "alice.mcollective", Role: pki.RoleClient})
	if err != nil {
		t.Fatal(err)
	}
	id := &Identity{Cert: cert, Key: key}
	for _, shared := range []bool{true, false} {
		v, err := NewVerifier(VerifierOptions{CA: ca.Cert, SharedSignatures: shared})
		if err != nil {
			t.Fatal(err)
		}
		checkCachedSignature(t, v, id)
	}
}

func checkCachedSignature(t *testing.T, v *Verifier, id *Identity) {
	t.Helper()
	cert := id.Cert
	msg := []byte("request")
	sig := id.Sign(msg)
	for range 2 { // the second time from the cache, if any
		if _, err := v.Verify(cert.Raw, msg, sig, pki.RoleClient); err != nil {
			t.Fatal(err)
		}
	}
	forged := append([]byte(nil), sig...)
	forged[0] ^= 1
	if _, err := v.Verify(cert.Raw, msg, forged, pki.RoleClient); err == nil {
		t.Fatal("a forged signature over a cached message verified")
	}
	if _, err := v.Verify(cert.Raw, []byte("other"), sig, pki.RoleClient); err == nil {
		t.Fatal("a cached signature verified another message")
	}
	v.SetRevoked(map[string]bool{cert.SerialNumber.Text(16): true})
	if _, err := v.Verify(cert.Raw, msg, sig, pki.RoleClient); err == nil {
		t.Fatal("a cached signature outlived its certificate's revocation")
	}
}
