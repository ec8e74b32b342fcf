package security

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/marionette/mco/internal/pki"
)

// WatchRevocations loads the revoked-serials file into the verifier and
// reloads it whenever it changes, until ctx ends. A file that cannot be read
// keeps the last good list (and is logged): a broken file must not un-revoke.
func WatchRevocations(ctx context.Context, path string, v *Verifier, every time.Duration, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	load := func() error {
		serials, err := pki.ReadRevoked(path)
		if err != nil {
			return err
		}
		v.SetRevoked(serials)
		return nil
	}
	if err := load(); err != nil {
		return err
	}
	var last time.Time
	if st, err := os.Stat(path); err == nil {
		last = st.ModTime()
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		st, err := os.Stat(path)
		mod := time.Time{}
		if err == nil {
			mod = st.ModTime()
		}
		if mod.Equal(last) {
			continue
		}
		last = mod
		if err := load(); err != nil {
			log.Error("revocation list not reloaded", "file", path, "err", err)
			continue
		}
		log.Info("revocation list reloaded", "file", path)
	}
}
