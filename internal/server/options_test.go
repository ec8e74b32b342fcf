package server

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/marionette/mco/internal/natstest"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/protocol"
)

// replyCert waits for the next reply and returns the certificate it was
// signed with (after n.reply's checks on a copy of it).
func (n *node) replyCert(id string) []byte {
	n.t.Helper()
	select {
	case m := <-n.replies:
		var env protocol.SecureReply
		if err := json.Unmarshal(m.Data, &env); err != nil {
			n.t.Fatal(err)
		}
		n.replies <- m // n.reply verifies it
		n.reply(id)
		return env.Cert
	case <-time.After(10 * time.Second):
		n.t.Fatalf("no reply to %s", id)
	}
	return nil
}

// TestCurrentIdentitySignsReplies: with Options.CurrentIdentity, each reply
// is signed with the identity it returns at the time (a renewed certificate
// is used at once), except one with another certname, which is never used.
func TestCurrentIdentitySignsReplies(t *testing.T) {
	p := newTestPKI(t)
	url := natstest.Start(t)
	var current atomic.Pointer[security.Identity]
	current.Store(p.node)
	n := newNode(t, p, url, func(o *Options) { o.CurrentIdentity = current.Load })
	for _, tt := range []struct {
		name string
		id   *security.Identity // CurrentIdentity's answer
		want *security.Identity // the signer of the reply
	}{
		{"initial", p.node, p.node},
		{"renewed", p.ca.Issue(pki.RoleNode, nodeName), nil},
		{"another certname", p.nodeCert, p.node},
	} {
		t.Run(tt.name, func(t *testing.T) {
			current.Store(tt.id)
			want := tt.want
			if want == nil {
				want = tt.id
			}
			req := newRequest()
			n.s.Handle(signed(t, p.alice, req))
			if got := n.replyCert(req.ID); !bytes.Equal(got, want.Cert.Raw) {
				t.Fatalf("reply signed with serial %s, want %s", serialOf(t, got), want.Cert.SerialNumber.Text(16))
			}
		})
	}
}

func serialOf(t *testing.T, der []byte) string {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.Text(16)
}

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) Completed(agent, action string, status protocol.StatusCode, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, agent+"."+action+":"+status.String())
}

// TestObserverFromOptions: the Observer given at construction is told of
// every answered request.
func TestObserverFromOptions(t *testing.T) {
	p := newTestPKI(t)
	url := natstest.Start(t)
	rec := &recorder{}
	n := newNode(t, p, url, func(o *Options) { o.Observer = rec })
	req := newRequest()
	n.s.Handle(signed(t, p.alice, req))
	n.reply(req.ID)
	n.s.wg.Wait()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.got) != 1 || rec.got[0] != "test.echo:"+protocol.OK.String() {
		t.Fatalf("observer told %q, want one test.echo OK", rec.got)
	}
}
