package security

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/marionette/mco/internal/pki"
)

// ServerTLS is the broker's TLS configuration: TLS 1.3 only, and every peer
// must present a certificate issued by the collective's CA.
func ServerTLS(id *Identity, roots *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.TLSCertificate()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    roots,
		RootCAs:      roots, // for routes to other brokers
	}
}

// ClientTLS is the configuration nodes and clients dial the broker with: the
// broker must present a broker certificate from the CA (not a node's or a
// client's, which the CA also signed) and, when revoked is set, one that is
// not revoked. revoked is consulted at every handshake, so reconnects see
// the current list.
func ClientTLS(id *Identity, roots *x509.CertPool, revoked ...func(*x509.Certificate) bool) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.TLSCertificate()},
		RootCAs:      roots,
		VerifyPeerCertificate: func(_ [][]byte, chains [][]*x509.Certificate) error {
			return CheckBroker(chains, revoked...)
		},
	}
}

// CheckBroker checks the verified chains of a TLS peer that must be a broker:
// its leaf has the broker role and is not revoked by any of revoked.
func CheckBroker(chains [][]*x509.Certificate, revoked ...func(*x509.Certificate) bool) error {
	if len(chains) == 0 || len(chains[0]) == 0 {
		return errors.New("no verified peer certificate")
	}
	leaf := chains[0][0]
	role, err := pki.RoleOf(leaf)
	if err != nil {
		return err
	}
	if role != pki.RoleBroker {
		return fmt.Errorf("%q is a %s certificate, not a broker's", leaf.Subject.CommonName, role)
	}
	for _, r := range revoked {
		if r != nil && r(leaf) {
			return fmt.Errorf("broker certificate %q is revoked", leaf.Subject.CommonName)
		}
	}
	return nil
}
