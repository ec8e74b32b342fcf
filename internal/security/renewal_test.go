package security

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/marionette/mco/internal/pki"
)

// writePair writes a new certificate and key for name under dir by rename,
// key first, and returns the certificate's serial in hex.
func writePair(t *testing.T, ca *pki.CA, dir, name string) string {
	t.Helper()
	cert, key, err := ca.Issue(pki.LeafRequest{Name: name, Role: pki.RoleNode})
	if err != nil {
		t.Fatal(err)
	}
	c, k := filepath.Join(dir, "node.crt"), filepath.Join(dir, "node.key")
	os.Remove(k + ".new")
	if err := pki.WriteKey(k+".new", key); err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteCert(c+".new", cert); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(k+".new", k); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(c+".new", c); err != nil {
		t.Fatal(err)
	}
	return cert.SerialNumber.Text(16)
}

func TestIdentityFilesRenewal(t *testing.T) {
	ca, err := pki.NewCA("renewal CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	first := writePair(t, ca, dir, "web1.example.net")
	f, err := LoadIdentityFiles(filepath.Join(dir, "node.crt"), filepath.Join(dir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Current().Cert.SerialNumber.Text(16); got != first {
		t.Fatalf("serial %s, want %s", got, first)
	}
	// TLS asks at every handshake.
	get := ClientTLSFrom(f.Current, nil).GetClientCertificate
	srv := ServerTLSFrom(f.Current, nil).GetCertificate

	// A renewal keeps the certname; another name is refused.
	second := writePair(t, ca, dir, "web1.example.net")
	if _, err := f.reload(nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []func() (*tls.Certificate, error){
		func() (*tls.Certificate, error) { return get(nil) },
		func() (*tls.Certificate, error) { return srv(nil) },
	} {
		tc, err := c()
		if err != nil || tc.Leaf.SerialNumber.Text(16) != second {
			t.Errorf("TLS certificate after renewal: %v, %v, want serial %s", tc, err, second)
		}
	}
	writePair(t, ca, dir, "db1.example.net")
	if _, err := f.reload(nil); err == nil || !strings.Contains(err.Error(), "keeps the certname") {
		t.Errorf("renewal to another name: %v", err)
	}
	if got := f.Current().Cert.SerialNumber.Text(16); got != second {
		t.Errorf("after a refused renewal the serial is %s, want %s", got, second)
	}

	// Watch swaps in a good pair and reports it. Its first look at the
	// files may come after a write, so write until it reports (bounded).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changed := make(chan *Identity, 1)
	go f.Watch(ctx, 10*time.Millisecond, nil, nil, func(id *Identity) {
		select {
		case changed <- id:
		default:
		}
	})
	for i := 0; i < 100; i++ {
		serial := writePair(t, ca, dir, "web1.example.net")
		select {
		case id := <-changed:
			if id.Cert.SerialNumber.Text(16) != serial && f.Current().Cert.SerialNumber.Text(16) == second {
				t.Errorf("Watch reported serial %s but kept %s", id.Cert.SerialNumber.Text(16), second)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatal("Watch never reported a renewal")
}
