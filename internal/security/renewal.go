package security

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/marionette/mco/internal/filewatch"
)

// IdentityFiles is a certificate and key on disk that may be renewed while
// the process runs: Watch reloads them when either file changes, and
// everything that asks Current (TLS handshakes, reply and registration
// signing) uses the new pair from then on. A renewal must keep the
// certname, since the broker's subject permissions and the node's identity
// are bound to it; a pair that does not load, does not match or fails the
// check keeps the old identity in use.
type IdentityFiles struct {
	CertFile, KeyFile string
	cur               atomic.Pointer[Identity]
}

// LoadIdentityFiles reads the pair once; Watch keeps it current.
func LoadIdentityFiles(certFile, keyFile string) (*IdentityFiles, error) {
	id, err := LoadIdentity(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	f := &IdentityFiles{CertFile: certFile, KeyFile: keyFile}
	f.cur.Store(id)
	return f, nil
}

// Current returns the identity in use.
func (f *IdentityFiles) Current() *Identity { return f.cur.Load() }

// reload loads the pair and swaps it in if check accepts it.
func (f *IdentityFiles) reload(check func(*Identity) error) (*Identity, error) {
	id, err := LoadIdentity(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, err
	}
	old := f.Current()
	if id.Name() != old.Name() {
		return nil, fmt.Errorf("the new certificate is for %q, not %q: a renewal keeps the certname", id.Name(), old.Name())
	}
	if check != nil {
		if err := check(id); err != nil {
			return nil, err
		}
	}
	f.cur.Store(id)
	return id, nil
}

// Watch follows the two files until ctx ends (file system events, and a
// check every interval regardless) and swaps in a renewed pair; onChange (optional) runs after each swap. check (optional)
// vets a new identity first, e.g. its role and issuer.
func (f *IdentityFiles) Watch(ctx context.Context, every time.Duration, log *slog.Logger, check func(*Identity) error, onChange func(*Identity)) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	version := func() (cert, key fileVersion) {
		if st, err := os.Stat(f.CertFile); err == nil {
			cert = versionOf(st)
		}
		if st, err := os.Stat(f.KeyFile); err == nil {
			key = versionOf(st)
		}
		return cert, key
	}
	lastCert, lastKey := version()
	var failedCert, failedKey fileVersion
	w := filewatch.New(every, f.CertFile, f.KeyFile)
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.C:
		}
		cert, key := version()
		if cert == lastCert && key == lastKey {
			continue
		}
		if cert == failedCert && key == failedKey {
			continue // reported already; wait for the next change
		}
		id, err := f.reload(check)
		if err != nil {
			// Cert and key are two files: between their writes the pair
			// does not match. Say so once per version; the next write
			// changes the version and is tried again.
			log.Warn("renewed certificate not (yet) usable, keeping the current one", "cert", f.CertFile, "key", f.KeyFile, "err", err)
			failedCert, failedKey = cert, key
			continue
		}
		lastCert, lastKey = cert, key
		log.Info("certificate renewed", "cert", f.CertFile, "serial", id.Cert.SerialNumber.Text(16), "not_after", id.Cert.NotAfter.UTC().Format(time.RFC3339))
		if onChange != nil {
			onChange(id)
		}
	}
}

// ServerTLSFrom is ServerTLS whose certificate is looked up at every
// handshake, so a renewed certificate serves new connections at once.
func ServerTLSFrom(current func() *Identity, roots *x509.CertPool) *tls.Config {
	cfg := ServerTLS(current(), roots)
	cfg.Certificates = nil
	cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return tlsCert(current()) }
	// Routes to other brokers dial out with the same certificate.
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return tlsCert(current()) }
	return cfg
}

// ClientTLSFrom is ClientTLS whose certificate is looked up at every
// handshake (each reconnect).
func ClientTLSFrom(current func() *Identity, roots *x509.CertPool, revoked ...func(*x509.Certificate) bool) *tls.Config {
	cfg := ClientTLS(current(), roots, revoked...)
	cfg.Certificates = nil
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return tlsCert(current()) }
	return cfg
}

func tlsCert(id *Identity) (*tls.Certificate, error) {
	if id == nil {
		return nil, errors.New("no certificate loaded")
	}
	c := id.TLSCertificate()
	return &c, nil
}
