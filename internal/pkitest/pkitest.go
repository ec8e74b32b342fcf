// Package pkitest gives tests a throw-away certificate authority: a CA, its
// verifier and certificates issued in one call each, failing the test on any
// error. It replaces the CA fixtures tests used to write out themselves.
package pkitest

import (
	"testing"
	"time"

	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/security"
)

// CA is a test certificate authority.
type CA struct {
	*pki.CA
	t testing.TB
}

// New creates a CA named name, valid from now.
func New(t testing.TB, name string) *CA {
	t.Helper()
	ca, err := pki.NewCA(name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &CA{CA: ca, t: t}
}

// Issue returns a certificate and key of the given role for name; hosts are
// the DNS names or IP addresses a broker certificate is valid for.
func (c *CA) Issue(role pki.Role, name string, hosts ...string) *security.Identity {
	c.t.Helper()
	cert, key, err := c.CA.Issue(pki.LeafRequest{Name: name, Role: role, Hosts: hosts})
	if err != nil {
		c.t.Fatal(err)
	}
	return &security.Identity{Cert: cert, Key: key}
}

// Node issues a node certificate.
func (c *CA) Node(name string) *security.Identity { c.t.Helper(); return c.Issue(pki.RoleNode, name) }

// Client issues a client certificate.
func (c *CA) Client(name string) *security.Identity {
	c.t.Helper()
	return c.Issue(pki.RoleClient, name)
}

// Verifier returns a verifier trusting this CA only.
func (c *CA) Verifier() *security.Verifier {
	c.t.Helper()
	v, err := security.NewVerifier(security.VerifierOptions{CA: c.Cert})
	if err != nil {
		c.t.Fatal(err)
	}
	return v
}
