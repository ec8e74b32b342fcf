package discovery

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// DefaultCacheAge is how long a node that answered a broadcast discovery is
// expected to answer the same discovery again.
const DefaultCacheAge = time.Hour

// Cache remembers which nodes answered a broadcast discovery, so that the
// next discovery with the same broker, collective and filter waits for them
// (up to the discovery timeout) instead of ending at the quiet window without
// a busy node, and lists them under "No response from" if they stay silent.
// One small JSON file per discovery key lives in Dir (under the user's cache
// directory); a node not seen for MaxAge is forgotten.
type Cache struct {
	Dir    string
	MaxAge time.Duration    // 0: DefaultCacheAge
	Now    func() time.Time // nil: time.Now
}

// cacheFile is the stored form: identity -> when it last answered.
type cacheFile struct {
	Nodes map[string]time.Time `json:"nodes"`
}

// CacheKey identifies a discovery: the same brokers, collective, client and
// filter expect the same nodes.
func CacheKey(parts ...any) string {
	b, _ := json.Marshal(parts) // plain data: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Cache) maxAge() time.Duration {
	if c.MaxAge > 0 {
		return c.MaxAge
	}
	return DefaultCacheAge
}

func (c *Cache) path(key string) string { return filepath.Join(c.Dir, key+".json") }

func (c *Cache) read(key string) (cacheFile, error) {
	f := cacheFile{Nodes: map[string]time.Time{}}
	data, err := os.ReadFile(c.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return cacheFile{Nodes: map[string]time.Time{}}, fmt.Errorf("discovery cache %s: %w", c.path(key), err)
	}
	if f.Nodes == nil {
		f.Nodes = map[string]time.Time{}
	}
	return f, nil
}

// Expected returns the nodes that answered this discovery within MaxAge.
// A missing or unreadable cache expects nothing.
func (c *Cache) Expected(key string) []string {
	if c == nil || c.Dir == "" {
		return nil
	}
	f, err := c.read(key)
	if err != nil {
		return nil
	}
	cutoff := c.now().Add(-c.maxAge())
	var out []string
	for n, seen := range f.Nodes {
		if seen.After(cutoff) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// Record notes that nodes answered this discovery now, and forgets nodes
// not seen for MaxAge. It writes atomically; concurrent clients at worst
// lose one another's update.
func (c *Cache) Record(key string, nodes []string) error {
	if c == nil || c.Dir == "" {
		return nil
	}
	f, err := c.read(key)
	if err != nil {
		f = cacheFile{Nodes: map[string]time.Time{}} // rewrite a broken cache
	}
	now := c.now()
	for n, seen := range f.Nodes {
		if !seen.After(now.Add(-c.maxAge())) {
			delete(f.Nodes, n)
		}
	}
	for _, n := range nodes {
		f.Nodes[n] = now
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("discovery cache: %w", err)
	}
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(c.Dir, key+".*.tmp")
	if err != nil {
		return fmt.Errorf("discovery cache: %w", err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("discovery cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), c.path(key)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("discovery cache: %w", err)
	}
	return nil
}

// UserCacheDir is the discovery cache directory for a user, from the
// environment as getenv reads it: $XDG_CACHE_HOME/marionette/discovery, else
// $HOME/.cache/marionette/discovery; "" when neither is set.
func UserCacheDir(getenv func(string) string) string {
	base := getenv("XDG_CACHE_HOME")
	if base == "" {
		if home := getenv("HOME"); home != "" {
			base = filepath.Join(home, ".cache")
		}
	}
	if base == "" {
		return ""
	}
	return filepath.Join(base, "marionette", "discovery")
}
