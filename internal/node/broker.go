package node

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/marionette/mco/internal/broker"
	"github.com/marionette/mco/internal/config"
	"github.com/marionette/mco/internal/filewatch"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/security"
)

// NewVerifier builds the trust rules shared by nodes and brokers from the
// security section of their configuration.
func NewVerifier(s *config.Security) (*security.Verifier, error) {
	ca, err := pki.ReadCert(s.CA)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	opts := security.VerifierOptions{CA: ca}
	if s.Allowlist != "" {
		if opts.Allowlist, err = security.ParseMatcher(s.Allowlist); err != nil {
			return nil, fmt.Errorf("security.certname_allowlist: %w", err)
		}
	}
	if s.Privileged != "" {
		if opts.Privileged, err = security.ParseMatcher(s.Privileged); err != nil {
			return nil, fmt.Errorf("security.privileged_certnames: %w", err)
		}
	}
	return security.NewVerifier(opts)
}

// LoadRevocations applies a revocation file to a verifier ("" is none).
func LoadRevocations(v *security.Verifier, file string) error {
	if file == "" {
		return nil
	}
	serials, err := pki.ReadRevoked(file)
	if err != nil {
		return fmt.Errorf("revocation file: %w", err)
	}
	v.SetRevoked(serials)
	return nil
}

// Broker is a broker assembled from its configuration (`mco broker run`).
type Broker struct {
	*broker.Broker
	cfg *config.Broker
	v   *security.Verifier
	ids *security.IdentityFiles // nil when insecure
	log *slog.Logger
}

// StartBroker assembles and starts the broker configured in cfg (file is its
// path, for messages).
func StartBroker(cfg *config.Broker, file string, log *slog.Logger) (*Broker, error) {
	v, err := NewVerifier(&cfg.Security)
	if err != nil {
		return nil, err
	}
	opts := broker.Options{
		Verifier: v, Listen: cfg.Listen, Insecure: cfg.Insecure, ClusterName: cfg.ClusterName,
		ClusterListen: cfg.ClusterListen, Routes: cfg.Routes, MaxPayload: cfg.MaxPayload,
		Collectives: cfg.Collectives, Monitor: cfg.Monitor, Logger: log,
	}
	if cfg.Collectors != "" {
		if opts.Collectors, err = security.ParseMatcher(cfg.Collectors); err != nil {
			return nil, fmt.Errorf("%s: collectors: %w", file, err)
		}
	}
	var ids *security.IdentityFiles
	if !cfg.Insecure {
		if ids, err = security.LoadIdentityFiles(cfg.Cert, cfg.Key); err != nil {
			return nil, fmt.Errorf("broker certificate: %w", err)
		}
		opts.CurrentIdentity = ids.Current
	}
	if err := LoadRevocations(v, cfg.RevocationFile); err != nil {
		return nil, err
	}
	b, err := broker.Start(opts)
	if err != nil {
		return nil, err
	}
	return &Broker{Broker: b, cfg: cfg, v: v, ids: ids, log: log}, nil
}

// Run serves until ctx ends, then shuts the broker down. With a revocation
// file, a newly revoked certificate's connections are dropped at once, not
// just refused next time; a certificate and key renewed on disk serve new
// connections without a restart.
func (b *Broker) Run(ctx context.Context) {
	var wg sync.WaitGroup
	if b.cfg.RevocationFile != "" {
		wg.Go(func() {
			_ = security.WatchRevocations(ctx, b.cfg.RevocationFile, b.v, filewatch.DefaultPoll, b.log, b.DropRevoked)
		})
	}
	if b.ids != nil {
		wg.Go(func() {
			b.ids.Watch(ctx, filewatch.DefaultPoll, b.log, func(id *security.Identity) error {
				_, err := b.v.Certificate(id.Cert.Raw, pki.RoleBroker)
				return err
			}, nil)
		})
	}
	<-ctx.Done()
	b.log.Info("broker shutting down")
	b.Shutdown()
	wg.Wait()
}
