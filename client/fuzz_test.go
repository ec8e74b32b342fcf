package client

import (
	"crypto/x509"
	"encoding/json"
	"testing"
	"time"

	"github.com/marionette/mco/internal/pkitest"
	"github.com/marionette/mco/protocol"
)

// FuzzVerifyReply feeds arbitrary bytes to the client's reply decoding: it
// must never panic, and nothing but a correctly signed node reply may come
// out as trusted.
func FuzzVerifyReply(f *testing.F) {
	ca := pkitest.New(f, "fuzz CA")
	v := ca.Verifier()
	node := ca.Node(web1)
	cert := node.Cert
	body, err := json.Marshal(&protocol.Reply{Protocol: protocol.ReplyProtocol, RequestID: "r1", Sender: web1, Agent: "rpcutil", Action: "ping", Data: map[string]any{"pong": 1}})
	if err != nil {
		f.Fatal(err)
	}
	good, err := json.Marshal(&protocol.SecureReply{Protocol: protocol.SecureReplyProtocol, Reply: body, Signature: node.Sign(body), Cert: cert.Raw})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"protocol":"marionette.secure_reply.1","reply":"e30=","signature":"","cert":""}`))
	f.Add([]byte(`null`))

	c := &Client{verifier: v}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := c.verifyReply(data, "r1", time.Now())
		if r.Err == nil && string(data) != string(good) {
			// Anything else that verifies must still be a genuine reply
			// signed by the node for this request.
			var env protocol.SecureReply
			if json.Unmarshal(data, &env) != nil {
				t.Fatalf("undecodable bytes accepted as a reply from %q", r.Sender)
			}
			signer, err := x509.ParseCertificate(env.Cert)
			if err != nil || !signer.Equal(node.Cert) || r.Sender != web1 {
				t.Fatalf("bytes not signed by the node accepted as a reply from %q", r.Sender)
			}
		}
	})
}
