package security

import (
	"crypto/tls"
	"crypto/x509"
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

// ClientTLS is the configuration nodes and clients dial the broker with.
func ClientTLS(id *Identity, roots *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.TLSCertificate()},
		RootCAs:      roots,
	}
}
