package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"math/big"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/protocol"
)

// renew issues a new certificate and key for name with the collective's CA
// and moves them over the ones in use, key first, as an operator's renewal
// script would (rename: a reader never sees half a file).
func renew(t *testing.T, c *collective, role pki.Role, name string, hosts []string) *x509.Certificate {
	t.Helper()
	ca, err := c.store.CA()
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue(pki.LeafRequest{Name: name, Role: role, Hosts: hosts})
	if err != nil {
		t.Fatal(err)
	}
	keyPath, certPath := c.store.KeyPath(name), c.store.CertPath(name)
	if err := pki.WriteKey(keyPath+".new", key); err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteCert(certPath+".new", cert); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(keyPath+".new", keyPath); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(certPath+".new", certPath); err != nil {
		t.Fatal(err)
	}
	return cert
}

// replySerial sends a ping to node and returns the serial of the
// certificate its reply is signed with.
func (rc *rawCaller) replySerial(t *testing.T, node string) *big.Int {
	t.Helper()
	id := rc.send(t, node, "cert="+rc.id.Name())
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m, err := rc.sub.NextMsg(time.Until(deadline))
		if err != nil {
			break
		}
		var env protocol.SecureReply
		var rep protocol.Reply
		if json.Unmarshal(m.Data, &env) != nil || json.Unmarshal(env.Reply, &rep) != nil || rep.RequestID != id {
			continue
		}
		cert, err := x509.ParseCertificate(env.Cert)
		if err != nil {
			t.Fatal(err)
		}
		return cert.SerialNumber
	}
	t.Fatalf("%s did not answer", node)
	return nil
}

// TestCertificateRenewalWithoutRestart: a node's and a broker's certificate
// and key replaced on disk are used without restarting either process.
func TestCertificateRenewalWithoutRestart(t *testing.T) {
	t.Parallel()
	t.Run("node", func(t *testing.T) {
		c := newCollective(t, collectiveOptions{})
		c.startDaemon("renew.e2e")
		rc := newRawCaller(t, c, "alice.mcollective")
		old := rc.replySerial(t, "renew.e2e")
		fresh := renew(t, c, pki.RoleNode, "renew.e2e", nil)
		if old.Cmp(fresh.SerialNumber) == 0 {
			t.Fatal("the renewed certificate has the old serial")
		}
		waitUntil(t, "replies signed with the renewed certificate", func() bool {
			return rc.replySerial(t, "renew.e2e").Cmp(fresh.SerialNumber) == 0
		})
		// A pair that does not belong together is not taken: the node keeps
		// signing with the renewed one.
		other, _, err := mustCA(t, c).Issue(pki.LeafRequest{Name: "renew.e2e", Role: pki.RoleNode})
		if err != nil {
			t.Fatal(err)
		}
		if err := pki.WriteCert(c.store.CertPath("renew.e2e")+".new", other); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(c.store.CertPath("renew.e2e")+".new", c.store.CertPath("renew.e2e")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second) // two polls of the watcher; nothing may change
		if got := rc.replySerial(t, "renew.e2e"); got.Cmp(fresh.SerialNumber) != 0 {
			t.Errorf("after a mismatched key the node signs with serial %s, want %s", got.Text(16), fresh.SerialNumber.Text(16))
		}
	})
	t.Run("broker", func(t *testing.T) {
		c := newCollective(t, collectiveOptions{})
		brokerURL := startBrokerProcess(t, c)
		u, err := url.Parse(brokerURL)
		if err != nil {
			t.Fatal(err)
		}
		id, roots := c.clientTLS(t, "alice.mcollective")
		// A fresh TLS handshake shows the certificate the broker serves.
		serial := func() *big.Int {
			s, err := brokerSerial(u.Host, id, roots)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		old := serial()
		fresh := renew(t, c, pki.RoleBroker, "broker.e2e", []string{"127.0.0.1"})
		if old.Cmp(fresh.SerialNumber) == 0 {
			t.Fatal("the renewed certificate has the old serial")
		}
		waitUntil(t, "the broker to present the renewed certificate", func() bool { return serial().Cmp(fresh.SerialNumber) == 0 })
	})
}

func mustCA(t *testing.T, c *collective) *pki.CA {
	t.Helper()
	ca, err := c.store.CA()
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// brokerSerial connects to a NATS server, reads its INFO line and upgrades
// to TLS as nats.go does, returning the serial the server presents.
func brokerSerial(hostport string, id *security.Identity, roots *x509.CertPool) (*big.Int, error) {
	var serial *big.Int
	cfg := security.ClientTLS(id, roots)
	cfg.ServerName = "127.0.0.1"
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) > 0 {
			serial = cs.PeerCertificates[0].SerialNumber
		}
		return nil
	}
	conn, err := natsTLSConn(hostport, cfg)
	if err != nil {
		return nil, err
	}
	conn.Close()
	return serial, nil
}

// natsTLSConn reads the server's plaintext INFO line and completes a TLS
// handshake on the same connection, as a NATS client does.
func natsTLSConn(hostport string, cfg *tls.Config) (*tls.Conn, error) {
	raw, err := net.DialTimeout("tcp", hostport, 5*time.Second)
	if err != nil {
		return nil, err
	}
	_ = raw.SetDeadline(time.Now().Add(5 * time.Second))
	// Read the INFO line byte by byte: a buffered reader could swallow the
	// start of the TLS handshake.
	var b [1]byte
	for b[0] != '\n' {
		if _, err := raw.Read(b[:]); err != nil {
			raw.Close()
			return nil, err
		}
	}
	conn := tls.Client(raw, cfg)
	if err := conn.Handshake(); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}
