// Package transport dials the broker for nodes and clients: TLS 1.3 with the
// caller's certificate, reconnecting with jittered backoff.
package transport

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/marionette/mco/internal/security"
)

// Options says how to reach the broker.
type Options struct {
	Brokers  []string
	Identity *security.Identity
	// CurrentIdentity, when set, is asked for the certificate at every TLS
	// handshake instead of Identity: a renewed certificate is used from
	// the next reconnect on.
	CurrentIdentity func() *security.Identity
	Roots           *x509.CertPool
	Insecure        bool   // plaintext, development only
	Name            string // connection name shown by the broker
	// Reconnect keeps trying forever (daemons); clients give up after a few tries.
	Reconnect bool
	Logger    *slog.Logger
	// Revoked, when set, refuses a broker whose certificate it reports
	// revoked, at every (re)connect.
	Revoked func(*x509.Certificate) bool
}

// Dial connects to the first reachable broker.
func Dial(o Options) (*nats.Conn, error) {
	if len(o.Brokers) == 0 {
		return nil, errors.New("no broker URL configured")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.Timeout(5 * time.Second),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectJitter(500*time.Millisecond, time.Second),
		// Large fan-outs publish bursts; do not fail them for a full buffer.
		nats.ReconnectBufSize(64 << 20),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			o.Logger.Warn("broker connection error", "subject", subj, "err", err)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				o.Logger.Warn("disconnected from broker", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			o.Logger.Info("reconnected to broker", "url", nc.ConnectedUrlRedacted())
		}),
	}
	if o.Reconnect {
		opts = append(opts, nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	} else {
		opts = append(opts, nats.MaxReconnects(3))
	}
	if !o.Insecure {
		if (o.Identity == nil && o.CurrentIdentity == nil) || o.Roots == nil {
			return nil, errors.New("TLS needs a certificate, key and CA (or run with insecure = true for development)")
		}
		if o.CurrentIdentity != nil {
			opts = append(opts, nats.Secure(security.ClientTLSFrom(o.CurrentIdentity, o.Roots, o.Revoked)))
		} else {
			opts = append(opts, nats.Secure(security.ClientTLS(o.Identity, o.Roots, o.Revoked)))
		}
	}
	nc, err := nats.Connect(strings.Join(o.Brokers, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to broker %s: %w", strings.Join(o.Brokers, ","), err)
	}
	return nc, nil
}

// Refusal returns the broker's permission refusal of an operation on a
// subject, or nil. The broker refuses a subscription or a publish
// asynchronously: after a flush round trip the refusal is the connection's
// last error. That error never clears, so only a refusal newer than before
// (the LastError taken before the operation) and naming this subject counts;
// an old refusal of another subject must not fail every later call.
// op is "subscription" or "publish"; subject may be a prefix (the refusal
// names the full subject).
func Refusal(nc *nats.Conn, before error, op, subject string) error {
	err := nc.LastError()
	if err == nil || err == before || !errors.Is(err, nats.ErrPermissionViolation) {
		return nil
	}
	if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(op+` to "`+subject)) {
		return nil
	}
	return err
}
