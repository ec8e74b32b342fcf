package security

import (
	"context"
	"log/slog"
	"maps"
	"os"
	"time"

	"github.com/marionette/mco/internal/filewatch"
	"github.com/marionette/mco/internal/pki"
)

// WatchRevocations loads the revoked-serials file into the verifier and
// reloads it whenever it changes (told by file system events, and checked
// every interval regardless), until ctx ends; onChange (optional) runs
// after each reload, e.g. to drop connections of newly revoked certificates.
// A file that cannot be read keeps the last good list (and is logged): a
// broken or deleted file must not un-revoke.
func WatchRevocations(ctx context.Context, path string, v *Verifier, every time.Duration, log *slog.Logger, onChange func()) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// pending: a fresh file dropped serials that are still applied. A file
	// rewritten in place (truncate, then write) can be read empty or cut
	// short, which would un-revoke; so while a file is fresh only additions
	// apply, and removals wait until it has been left alone.
	pending := false
	load := func(fresh bool) error {
		serials, err := pki.ReadRevoked(path)
		if err != nil {
			return err
		}
		cur := v.RevokedSerials()
		pending = false
		if fresh {
			for sn := range cur {
				if !serials[sn] {
					serials[sn], pending = true, true
				}
			}
		}
		if maps.Equal(serials, cur) {
			return nil
		}
		v.SetRevoked(serials)
		if onChange != nil {
			onChange()
		}
		return nil
	}
	serials, err := pki.ReadRevoked(path)
	if err != nil {
		return err
	}
	v.SetRevoked(serials)
	if onChange != nil {
		onChange()
	}
	var last fileVersion // of the loaded file; zero: none yet
	if st, err := os.Stat(path); err == nil {
		last = versionOf(st)
	}
	unreadable := false    // already reported
	var broken fileVersion // a version that did not parse
	w := filewatch.New(every, path)
	defer w.Stop()
	// settled fires once a fresh file with pending removals has been left
	// alone long enough for them to apply; events alone would not come.
	settled := time.NewTimer(time.Hour)
	settled.Stop()
	defer settled.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.C:
		case <-settled.C:
		}
		st, err := os.Stat(path)
		if err != nil {
			if last != (fileVersion{}) && !unreadable {
				log.Error("revocation list unreadable, keeping the last one", "file", path, "err", err)
				unreadable = true
			}
			continue
		}
		v := versionOf(st)
		// A file written in place (truncate, then write) may be read half
		// written within one timestamp tick: while it is fresh, read it again.
		fresh := time.Since(st.ModTime()) < freshFor
		if (v == last && !unreadable && !fresh && !pending) || (v == broken && !fresh) {
			continue
		}
		if err := load(fresh); err != nil {
			log.Error("revocation list not reloaded, keeping the last one", "file", path, "err", err)
			broken = v
			continue
		}
		if v != last || unreadable {
			log.Info("revocation list reloaded", "file", path)
		}
		last, unreadable = v, false
		if pending {
			settled.Reset(time.Until(st.ModTime().Add(freshFor)) + 10*time.Millisecond)
		}
	}
}

// freshFor is how long after its last write a file may still be being
// written in place.
const freshFor = 2 * time.Second

// fileVersion tells versions of a file apart: modification time alone misses
// a rewrite within one timestamp tick, so size and inode count too.
type fileVersion struct {
	mod  time.Time
	size int64
	ino  uint64
}

func versionOf(st os.FileInfo) fileVersion {
	return fileVersion{mod: st.ModTime(), size: st.Size(), ino: inode(st)}
}
