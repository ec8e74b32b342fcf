// Package pki creates Marionette's certificate authority and issues role-bound
// Ed25519 certificates for brokers, nodes and clients.
//
// Roles are explicit: every leaf carries a role extension (client, node or
// broker) besides its extended key usages, so a node certificate can never act
// as a client. Leaves are never CAs and carry no CertSign usage, so x509 chain
// verification refuses any chain in which a leaf signs.
package pki

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// Role is what a certificate may be used for.
type Role string

// The certificate roles.
const (
	RoleClient Role = "client"
	RoleNode   Role = "node"
	RoleBroker Role = "broker"
)

// ParseRole validates a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleClient, RoleNode, RoleBroker:
		return r, nil
	}
	return "", fmt.Errorf("unknown certificate role %q (want client, node or broker)", s)
}

// RoleOID identifies the role extension in Marionette certificates.
var RoleOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 59823, 1, 1}

// RoleOf returns the role recorded in a certificate, or an error when it has none.
func RoleOf(cert *x509.Certificate) (Role, error) {
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(RoleOID) {
			continue
		}
		var s string
		if _, err := asn1.Unmarshal(ext.Value, &s); err != nil {
			return "", fmt.Errorf("certificate %q: malformed role extension: %w", cert.Subject.CommonName, err)
		}
		return ParseRole(s)
	}
	return "", fmt.Errorf("certificate %q has no Marionette role", cert.Subject.CommonName)
}

// CA is a certificate authority able to issue leaves.
type CA struct {
	Cert *x509.Certificate
	Key  ed25519.PrivateKey
}

// Validity periods. Leaves are shorter-lived than the CA that signs them.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	LeafValidity = 2 * 365 * 24 * time.Hour
)

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// NewCA creates a self-signed Ed25519 certificate authority.
func NewCA(name string, now time.Time) (*CA, error) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Marionette"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true, // the CA signs leaves only, never sub-CAs
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// LeafRequest describes a certificate to issue.
type LeafRequest struct {
	Name  string   // certname (subject common name)
	Role  Role     // client, node or broker
	Hosts []string // extra DNS names or IPs (brokers); the name is always included
	Now   time.Time
}

// Issue creates a key pair and a certificate for it signed by the CA.
func (ca *CA) Issue(req LeafRequest) (*x509.Certificate, ed25519.PrivateKey, error) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	cert, err := ca.Sign(req, pub)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// Sign certifies an existing public key (the CSR flow: the private key never
// leaves the machine that uses it).
func (ca *CA) Sign(req LeafRequest, pub crypto.PublicKey) (*x509.Certificate, error) {
	if err := ValidName(req.Name); err != nil {
		return nil, err
	}
	if _, err := ParseRole(string(req.Role)); err != nil {
		return nil, err
	}
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	roleExt, err := asn1.Marshal(string(req.Role))
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: req.Name, OrganizationalUnit: []string{string(req.Role)}},
		NotBefore:             req.Now.Add(-time.Hour),
		NotAfter:              req.Now.Add(LeafValidity),
		BasicConstraintsValid: true,
		IsCA:                  false,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtraExtensions:       []pkix.Extension{{Id: RoleOID, Value: roleExt}},
	}
	switch req.Role {
	case RoleBroker:
		// Brokers serve clients and nodes, and dial each other for clustering.
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		hosts := append([]string{req.Name}, req.Hosts...)
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	default:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issuing %s certificate %q: %w", req.Role, req.Name, err)
	}
	return x509.ParseCertificate(der)
}

// ValidName checks that a certname is usable in subjects and file names.
func ValidName(name string) error {
	if name == "" {
		return errors.New("certificate name is empty")
	}
	if len(name) > 253 {
		return fmt.Errorf("certificate name %q is longer than 253 characters", name)
	}
	for i, r := range name {
		ok := r == '-' || r == '_' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return fmt.Errorf("certificate name %q: character %q at position %d is not allowed (letters, digits, '.', '-', '_')", name, r, i+1)
		}
	}
	if name[0] == '.' || name[len(name)-1] == '.' {
		return fmt.Errorf("certificate name %q may not start or end with '.'", name)
	}
	return nil
}

func pkixName(name string) pkix.Name { return pkix.Name{CommonName: name} }
