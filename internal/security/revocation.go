package security

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/marionette/mco/internal/pki"
)

// WatchRevocations loads the revoked-serials file into the verifier and
// reloads it whenever it changes, until ctx ends; onChange (optional) runs
// after each reload, e.g. to drop connections of newly revoked certificates.
// A file that cannot be read keeps the last good list (and is logged): a
// broken or deleted file must not un-revoke.
func WatchRevocations(ctx context.Context, path string, v *Verifier, every time.Duration, log *slog.Logger, onChange func()) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	load := func() error {
		serials, err := pki.ReadRevoked(path)
		if err != nil {
			return err
		}
		v.SetRevoked(serials)
		if onChange != nil {
			onChange()
		}
		return nil
	}
	if err := load(); err != nil {
		return err
	}
	var last time.Time // modification time of the loaded file; zero: none yet
	if st, err := os.Stat(path); err == nil {
		last = st.ModTime()
	}
	unreadable := false  // already reported
	var broken time.Time // modification time of a version that did not parse
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		st, err := os.Stat(path)
		if err != nil {
			if !last.IsZero() && !unreadable {
				log.Error("revocation list unreadable, keeping the last one", "file", path, "err", err)
				unreadable = true
			}
			continue
		}
		if (st.ModTime().Equal(last) && !unreadable) || st.ModTime().Equal(broken) {
			continue
		}
		if err := load(); err != nil {
			log.Error("revocation list not reloaded, keeping the last one", "file", path, "err", err)
			broken = st.ModTime()
			continue
		}
		last, unreadable = st.ModTime(), false
		log.Info("revocation list reloaded", "file", path)
	}
}
