package puppetagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
)

// managedIndex is what Puppet's catalog manages on this node, from
// resources.txt (type[title]) and the cached catalog (each resource's
// namevar as Puppet resolved it): a title alone misses
// `file { 'motd': path => '/etc/motd' }`, listed as file[motd] but managing
// /etc/motd.
type managedIndex struct {
	// keys are "type[name]", lower-case, file and tidy names normalised
	// with pathOf: every title and every namevar.
	keys map[string]bool
	// files are the normalised paths of the managed file resources, for
	// the check of a directory's change.
	files []string
}

// has reports whether type[name] is managed.
func (ix *managedIndex) has(typ, name string) bool {
	return ix.keys[managedKey(typ, name)]
}

// below returns a managed file inside the directory dir, or "".
func (ix *managedIndex) below(dir string) string {
	prefix := strings.TrimRight(pathOf("file", dir), "/") + "/"
	for _, f := range ix.files {
		if strings.HasPrefix(strings.ToLower(f), strings.ToLower(prefix)) {
			return f
		}
	}
	return ""
}

func managedKey(typ, name string) string {
	typ = strings.ToLower(typ)
	return strings.ToLower(typ + "[" + pathOf(typ, name) + "]")
}

func (ix *managedIndex) add(typ, name string) {
	typ = strings.ToLower(typ)
	ix.keys[managedKey(typ, name)] = true
	if typ == "file" && strings.HasPrefix(name, "/") {
		ix.files = append(ix.files, pathOf(typ, name))
	}
}

// managedCache holds the managedIndex of the files it was read from, read
// again only when one of them changed: by the watcher (Watch) when one
// runs, else after a stat of both files.
type managedCache struct {
	mu       sync.Mutex
	resFile  string
	catalog  string
	stamps   [2]fileStamp
	loaded   bool
	ix       *managedIndex
	err      error
	watching bool // Watch keeps the cache current: requests do not stat
}

// get returns the index for s's files, reading them when they were never
// read, moved, or (with no watcher) changed. An error means the files
// exist but could not be read or parsed: the caller must refuse.
func (c *managedCache) get(s *Settings) (*managedIndex, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded && c.resFile == s.ResourceFile && c.catalog == s.Catalog &&
		(c.watching || c.stamps == [2]fileStamp{stampOf(s.ResourceFile), stampOf(s.Catalog)}) {
		return c.ix, c.err
	}
	c.loadLocked(s)
	return c.ix, c.err
}

// refresh re-reads the files when they changed; Watch calls it on every
// event, so requests find the index current.
func (c *managedCache) refresh(s *Settings) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.watching = true
	if c.loaded && c.resFile == s.ResourceFile && c.catalog == s.Catalog &&
		c.stamps == [2]fileStamp{stampOf(s.ResourceFile), stampOf(s.Catalog)} {
		return
	}
	c.loadLocked(s)
}

// stopWatching makes requests check the files' stamps again.
func (c *managedCache) stopWatching() {
	c.mu.Lock()
	c.watching = false
	c.mu.Unlock()
}

func (c *managedCache) loadLocked(s *Settings) {
	c.resFile, c.catalog, c.loaded = s.ResourceFile, s.Catalog, true
	// Stamped before reading: a change while reading reads again.
	c.stamps = [2]fileStamp{stampOf(s.ResourceFile), stampOf(s.Catalog)}
	c.ix, c.err = readManaged(s.ResourceFile, s.Catalog)
}

// readManaged builds the index from resources.txt and the cached catalog;
// a file that does not exist adds nothing (Puppet never ran, or ran
// without writing it).
func readManaged(resFile, catalog string) (*managedIndex, error) {
	ix := &managedIndex{keys: map[string]bool{}}
	if b, err := readIfExists(resFile); err != nil {
		return nil, err
	} else if b != nil {
		if err := parseResourceFile(resFile, b, ix); err != nil {
			return nil, err
		}
	}
	if b, err := readIfExists(catalog); err != nil {
		return nil, err
	} else if b != nil {
		if err := parseCatalog(catalog, b, ix); err != nil {
			return nil, err
		}
	}
	return ix, nil
}

func readIfExists(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return b, nil
}

// parseResourceFile reads resources.txt: one type[title] a line.
func parseResourceFile(path string, b []byte, ix *managedIndex) error {
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		typ, title, ok := strings.Cut(line, "[")
		if !ok || !strings.HasSuffix(title, "]") || !validResourceType(strings.ToLower(typ)) {
			return fmt.Errorf("%s:%d: not a resource (type[title]): %q", path, i+1, line)
		}
		ix.add(typ, strings.TrimSuffix(title, "]"))
	}
	return nil
}

// catalogResource is one resource of Puppet's JSON catalog.
type catalogResource struct {
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Parameters map[string]any `json:"parameters"`
}

// namevars are the parameters that name a resource instead of its title,
// by type: file and tidy's path, exec's command; for any type, name.
var namevars = map[string][]string{"file": {"path"}, "tidy": {"path"}, "exec": {"command"}}

// parseCatalog reads Puppet's cached JSON catalog: every resource by its
// title and by each namevar the catalog gives.
func parseCatalog(path string, b []byte, ix *managedIndex) error {
	var cat struct {
		Resources *[]catalogResource `json:"resources"`
	}
	if err := json.Unmarshal(b, &cat); err != nil {
		return fmt.Errorf("%s: not a Puppet catalog: %w", path, err)
	}
	if cat.Resources == nil {
		return fmt.Errorf("%s: not a Puppet catalog: no resources", path)
	}
	for i, r := range *cat.Resources {
		typ := strings.ToLower(r.Type)
		if !validResourceType(typ) || r.Title == "" {
			return fmt.Errorf("%s: resources[%d]: no type or title", path, i)
		}
		ix.add(typ, r.Title)
		for _, p := range append([]string{"name"}, namevars[typ]...) {
			if v, ok := r.Parameters[p].(string); ok && v != "" {
				ix.add(typ, v)
			}
		}
	}
	return nil
}
