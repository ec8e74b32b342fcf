package pki

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Store is a PKI directory:
//
//	ca.crt, ca.key          the certificate authority
//	certs/NAME.crt          issued certificates
//	private/NAME.key        their private keys (0600; absent for CSR-signed certs)
//	revoked.txt             serial numbers of revoked certificates, one per line
type Store struct {
	Dir string
}

// Paths of a store's files.
func (s Store) CACertPath() string          { return filepath.Join(s.Dir, "ca.crt") }
func (s Store) caKeyPath() string           { return filepath.Join(s.Dir, "ca.key") }
func (s Store) CertPath(name string) string { return filepath.Join(s.Dir, "certs", name+".crt") }
func (s Store) KeyPath(name string) string  { return filepath.Join(s.Dir, "private", name+".key") }
func (s Store) RevokedPath() string         { return filepath.Join(s.Dir, "revoked.txt") }

// Init creates a new CA in the store. It refuses to overwrite an existing one.
func (s Store) Init(name string) (*CA, error) {
	if _, err := os.Stat(s.CACertPath()); err == nil {
		return nil, fmt.Errorf("%s already exists: refusing to replace the CA", s.CACertPath())
	}
	ca, err := NewCA(name, time.Now())
	if err != nil {
		return nil, err
	}
	for _, d := range []string{s.Dir, filepath.Join(s.Dir, "certs"), filepath.Join(s.Dir, "private")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := WriteCert(s.CACertPath(), ca.Cert); err != nil {
		return nil, err
	}
	if err := WriteKey(s.caKeyPath(), ca.Key); err != nil {
		return nil, err
	}
	return ca, nil
}

// CA loads the store's certificate authority with its key.
func (s Store) CA() (*CA, error) {
	cert, err := ReadCert(s.CACertPath())
	if err != nil {
		return nil, fmt.Errorf("loading CA (run 'mco pki init' first?): %w", err)
	}
	key, err := ReadKey(s.caKeyPath())
	if err != nil {
		return nil, fmt.Errorf("loading CA key: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// Issue creates and stores a certificate and key for name.
func (s Store) Issue(role Role, name string, hosts []string) (*x509.Certificate, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	if _, err := os.Stat(s.CertPath(name)); err == nil {
		return nil, fmt.Errorf("a certificate named %q already exists (%s)", name, s.CertPath(name))
	}
	ca, err := s.CA()
	if err != nil {
		return nil, err
	}
	cert, key, err := ca.Issue(LeafRequest{Name: name, Role: role, Hosts: hosts})
	if err != nil {
		return nil, err
	}
	if err := WriteKey(s.KeyPath(name), key); err != nil {
		return nil, err
	}
	return cert, WriteCert(s.CertPath(name), cert)
}

// CSRSubject returns the name and extra DNS names a PEM certificate request
// asks for, after checking its signature, so they can be shown before signing.
func CSRSubject(csrPEM []byte) (string, []string, error) {
	csr, err := parseCSR(csrPEM)
	if err != nil {
		return "", nil, err
	}
	return csr.Subject.CommonName, csr.DNSNames, nil
}

func parseCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("not a PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request signature: %w", err)
	}
	return csr, nil
}

// SignCSR certifies the public key of a PEM certificate request.
func (s Store) SignCSR(role Role, csrPEM []byte) (*x509.Certificate, error) {
	csr, err := parseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	name := csr.Subject.CommonName
	if _, err := os.Stat(s.CertPath(name)); err == nil {
		return nil, fmt.Errorf("a certificate named %q already exists", name)
	}
	ca, err := s.CA()
	if err != nil {
		return nil, err
	}
	cert, err := ca.Sign(LeafRequest{Name: name, Role: role, Hosts: csr.DNSNames}, csr.PublicKey)
	if err != nil {
		return nil, err
	}
	return cert, WriteCert(s.CertPath(name), cert)
}

// Entry is one issued certificate as listed by List.
type Entry struct {
	Name     string
	Role     Role
	Serial   string
	NotAfter time.Time
	Revoked  bool
}

// List returns the issued certificates sorted by name.
func (s Store) List() ([]Entry, error) {
	revoked, err := ReadRevoked(s.RevokedPath())
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(s.Dir, "certs", "*.crt"))
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, f := range files {
		cert, err := ReadCert(f)
		if err != nil {
			return nil, err
		}
		role, _ := RoleOf(cert)
		sn := cert.SerialNumber.Text(16)
		out = append(out, Entry{Name: cert.Subject.CommonName, Role: role, Serial: sn, NotAfter: cert.NotAfter, Revoked: revoked[sn]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Revoke adds the named certificate's serial to the revocation list.
func (s Store) Revoke(name string) (*x509.Certificate, error) {
	cert, err := ReadCert(s.CertPath(name))
	if err != nil {
		return nil, fmt.Errorf("no issued certificate named %q: %w", name, err)
	}
	f, err := os.OpenFile(s.RevokedPath(), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	_, err = fmt.Fprintf(f, "%s %s\n", cert.SerialNumber.Text(16), name)
	return cert, err
}

// ReadRevoked reads a revoked-serials file: hex serial first on each line,
// anything after it (the name) is a comment. A missing file revokes nothing.
func ReadRevoked(path string) (map[string]bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sn := strings.ToLower(strings.Fields(line)[0])
		for _, r := range sn {
			if !strings.ContainsRune("0123456789abcdef", r) {
				return nil, fmt.Errorf("%s:%d: %q is not a hex serial number", path, i+1, sn)
			}
		}
		out[strings.TrimLeft(sn, "0")] = true
	}
	return out, nil
}

// WriteCert writes a certificate as PEM.
func WriteCert(path string, cert *x509.Certificate) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644)
}

// WriteKey writes a private key as PKCS#8 PEM readable only by its owner.
func WriteKey(path string, key ed25519.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadCert reads the first PEM certificate in a file.
func ReadCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cert, nil
}

// ReadKey reads an Ed25519 PKCS#8 PEM private key.
func ReadKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: no PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", path)
	}
	return key, nil
}

// NewCSR creates a key pair and a PEM certificate request for name.
func NewCSR(name string) (csrPEM []byte, key ed25519.PrivateKey, err error) {
	if err := ValidName(name); err != nil {
		return nil, nil, err
	}
	_, key, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkixName(name)}, key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), key, nil
}
