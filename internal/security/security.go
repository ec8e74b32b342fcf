// Package security signs and verifies Marionette messages and builds the TLS
// configurations every role uses.
//
// A message is trusted only when its signature verifies against a certificate
// that chains to the collective's CA, carries the expected role, is not
// revoked, and (for clients) whose certname passes the allow list. Chain
// verification is costly, so verified certificates are cached by fingerprint;
// the signature itself is checked on every message.
package security

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/marionette/mco/internal/match"
	"github.com/marionette/mco/internal/pki"
)

// Identity is a certificate with its private key: what a client or node signs with.
type Identity struct {
	Cert *x509.Certificate
	Key  ed25519.PrivateKey
}

// Name is the certificate's certname.
func (id *Identity) Name() string { return id.Cert.Subject.CommonName }

// Sign signs msg with the identity's key.
func (id *Identity) Sign(msg []byte) []byte { return ed25519.Sign(id.Key, msg) }

// LoadIdentity reads a PEM certificate and key.
func LoadIdentity(certFile, keyFile string) (*Identity, error) {
	cert, err := pki.ReadCert(certFile)
	if err != nil {
		return nil, err
	}
	key, err := pki.ReadKey(keyFile)
	if err != nil {
		return nil, err
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok || !pub.Equal(key.Public()) {
		return nil, fmt.Errorf("%s does not belong to the certificate %s", keyFile, certFile)
	}
	return &Identity{Cert: cert, Key: key}, nil
}

// TLSCertificate returns the identity as a tls.Certificate.
func (id *Identity) TLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{id.Cert.Raw}, PrivateKey: id.Key, Leaf: id.Cert}
}

// Matcher matches certnames against a list of exact names and /regexes/, as in
// "bob, jill, /\.mcollective$/". It is the one exact-or-/regex/ matcher of
// Marionette (internal/match), shared with filters and policy classes; the
// empty regex // is refused rather than admitting every certname.
type Matcher = match.List

// ParseMatcher parses a comma-separated list of names and /regexes/.
func ParseMatcher(list string) (*Matcher, error) { return match.ParseList(list) }

// Defaults for the certname rules (docs/security.md, "Callers and allow lists").
const (
	DefaultAllowlist  = `/\.mcollective$/`
	DefaultPrivileged = `/\.privileged\.mcollective$/`
)

// VerifierOptions configures a Verifier.
type VerifierOptions struct {
	CA *x509.Certificate
	// Allowlist restricts client certnames; nil means DefaultAllowlist.
	Allowlist *Matcher
	// Privileged certnames may sign requests on behalf of another caller id;
	// nil means DefaultPrivileged.
	Privileged *Matcher
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// SharedSignatures remembers verified signatures for a while, for a
	// verifier that many nodes emulated in one process share (mco dev):
	// each would otherwise check one broadcast's signature once per node.
	// A real node or client sees every signed message once, so the cache
	// would only cost it a hash and a map entry per message; off by default.
	SharedSignatures bool
}

// Verifier checks certificates and signatures against one CA.
type Verifier struct {
	roots      *x509.CertPool
	ca         *x509.Certificate
	allow      *Matcher
	privileged *Matcher
	now        func() time.Time
	cache      sync.Map // [32]byte fingerprint -> *verified (successes only)
	cached     atomic.Int64
	signatures sync.Map // [32]byte hash of (cert, message, signature) -> verified
	signed     atomic.Int64
	revoked    atomic.Pointer[map[string]bool]
	// rememberSignatures is VerifierOptions.SharedSignatures.
	rememberSignatures bool
}

type verified struct {
	cert *x509.Certificate
	role pki.Role
	err  error
}

// NewVerifier returns a verifier for certificates issued by opts.CA.
func NewVerifier(opts VerifierOptions) (*Verifier, error) {
	if opts.CA == nil {
		return nil, errors.New("verifier needs a CA certificate")
	}
	v := &Verifier{roots: x509.NewCertPool(), ca: opts.CA, allow: opts.Allowlist, privileged: opts.Privileged, now: opts.Now, rememberSignatures: opts.SharedSignatures}
	v.roots.AddCert(opts.CA)
	var err error
	if v.allow == nil {
		if v.allow, err = ParseMatcher(DefaultAllowlist); err != nil {
			return nil, err
		}
	}
	if v.privileged == nil {
		if v.privileged, err = ParseMatcher(DefaultPrivileged); err != nil {
			return nil, err
		}
	}
	if v.now == nil {
		v.now = time.Now
	}
	empty := map[string]bool{}
	v.revoked.Store(&empty)
	return v, nil
}

// Roots is the CA pool, for TLS configuration.
func (v *Verifier) Roots() *x509.CertPool { return v.roots }

// SetRevoked replaces the set of revoked serial numbers (lower-case hex without
// leading zeros). It takes effect for the next message, without restart.
func (v *Verifier) SetRevoked(serials map[string]bool) { v.revoked.Store(&serials) }

// RevokedSerials returns the current revocation list (lower-case hex serials).
// Callers must not modify it.
func (v *Verifier) RevokedSerials() map[string]bool { return *v.revoked.Load() }

// IsRevoked reports whether a certificate is on the revocation list.
func (v *Verifier) IsRevoked(cert *x509.Certificate) bool {
	return (*v.revoked.Load())[cert.SerialNumber.Text(16)]
}

// maxCachedCerts bounds the verification cache; a collective has far fewer
// distinct client and node certificates than this.
const maxCachedCerts = 100_000

// ErrUntrusted wraps every certificate rejection, so callers can count them.
var ErrUntrusted = errors.New("untrusted certificate")

// Certificate verifies a DER certificate: chain to the CA, validity, role, and
// revocation; client certificates must also pass the certname allow list.
func (v *Verifier) Certificate(der []byte, role pki.Role) (*x509.Certificate, error) {
	fp := sha256.Sum256(der)
	var ent *verified
	if e, ok := v.cache.Load(fp); ok {
		ent = e.(*verified)
	} else {
		ent = v.verifyChain(der)
		if ent.err != nil {
			// Failures are not cached: random certificate bytes must not
			// grow the cache.
			return nil, ent.err
		}
		if v.cached.Add(1) > maxCachedCerts {
			v.cache.Clear()
			v.cached.Store(1)
		}
		v.cache.Store(fp, ent)
	}
	cert := ent.cert
	now := v.now()
	// The chain was built once, at a fixed time; the CA's own validity is
	// checked on every use like the leaf's.
	if now.Before(v.ca.NotBefore) || now.After(v.ca.NotAfter) {
		return nil, fmt.Errorf("%w: the CA %q is not valid at %s", ErrUntrusted, v.ca.Subject.CommonName, now.Format(time.RFC3339))
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return nil, fmt.Errorf("%w: %q is not valid at %s", ErrUntrusted, cert.Subject.CommonName, now.Format(time.RFC3339))
	}
	if ent.role != role {
		return nil, fmt.Errorf("%w: %q is a %s certificate, not a %s one", ErrUntrusted, cert.Subject.CommonName, ent.role, role)
	}
	if v.IsRevoked(cert) {
		return nil, fmt.Errorf("%w: %q is revoked", ErrUntrusted, cert.Subject.CommonName)
	}
	if role == pki.RoleClient && !v.allow.Match(cert.Subject.CommonName) {
		return nil, fmt.Errorf("%w: certname %q is not on the client allow list", ErrUntrusted, cert.Subject.CommonName)
	}
	return cert, nil
}

// verifyChain does the expensive, cacheable part: parsing and chain building.
// Validity times are checked per use, so a cached entry never outlives its cert.
func (v *Verifier) verifyChain(der []byte) *verified {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return &verified{err: fmt.Errorf("%w: %v", ErrUntrusted, err)}
	}
	_, err = cert.Verify(x509.VerifyOptions{
		Roots:       v.roots,
		CurrentTime: cert.NotBefore.Add(time.Second), // validity is checked per use
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return &verified{err: fmt.Errorf("%w: %q: %v", ErrUntrusted, cert.Subject.CommonName, err)}
	}
	if cert.IsCA {
		return &verified{err: fmt.Errorf("%w: %q is a CA certificate", ErrUntrusted, cert.Subject.CommonName)}
	}
	role, err := pki.RoleOf(cert)
	if err != nil {
		return &verified{err: fmt.Errorf("%w: %v", ErrUntrusted, err)}
	}
	if _, ok := cert.PublicKey.(ed25519.PublicKey); !ok {
		return &verified{err: fmt.Errorf("%w: %q does not hold an Ed25519 key", ErrUntrusted, cert.Subject.CommonName)}
	}
	return &verified{cert: cert, role: role}
}

// ErrBadSignature means the signature does not match the message and certificate.
var ErrBadSignature = errors.New("signature does not verify")

// Verify checks a signature made by the holder of a verified certificate.
//
// The certificate checks run on every call. With
// VerifierOptions.SharedSignatures the signature check is remembered for a
// short while (successes only).
func (v *Verifier) Verify(der, msg, sig []byte, role pki.Role) (*x509.Certificate, error) {
	cert, err := v.Certificate(der, role)
	if err != nil {
		return nil, err
	}
	pub := cert.PublicKey.(ed25519.PublicKey)
	if !v.rememberSignatures {
		if !ed25519.Verify(pub, msg, sig) {
			return nil, fmt.Errorf("%w (signer %q)", ErrBadSignature, cert.Subject.CommonName)
		}
		return cert, nil
	}
	h := sha256.New()
	for _, part := range [][]byte{der, msg, sig} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:]) // lengths keep the parts apart: no two splits hash alike
		h.Write(part)
	}
	var key [32]byte
	h.Sum(key[:0])
	if _, ok := v.signatures.Load(key); ok {
		return cert, nil
	}
	if !ed25519.Verify(pub, msg, sig) {
		return nil, fmt.Errorf("%w (signer %q)", ErrBadSignature, cert.Subject.CommonName)
	}
	if v.signed.Add(1) > maxCachedSignatures {
		v.signatures.Clear()
		v.signed.Store(1)
	}
	v.signatures.Store(key, struct{}{})
	return cert, nil
}

// maxCachedSignatures bounds the verified-signature cache: a few broadcasts'
// worth, enough for an emulated collective.
const maxCachedSignatures = 4096

// CallerID is the caller id a certificate may claim by default.
func CallerID(certname string) string { return "cert=" + certname }

// CheckCaller enforces who may claim which caller id: a privileged certificate
// may act for anyone, every other one only for itself.
func (v *Verifier) CheckCaller(cert *x509.Certificate, caller string) error {
	name := cert.Subject.CommonName
	if caller == CallerID(name) {
		return nil
	}
	if v.privileged.Match(name) {
		return nil
	}
	return fmt.Errorf("%w: certificate %q may not act as caller %q", ErrUntrusted, name, caller)
}
