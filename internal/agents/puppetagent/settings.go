package puppetagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// settingNames are the Puppet settings the agent needs, read with
// `puppet config print` so that whatever puppet.conf says (Debian's paths,
// the AIO paths, a test's confdir) is honoured.
var settingNames = []string{
	"config", "statedir", "agent_disabled_lockfile", "agent_catalog_run_lockfile",
	"lastrunfile", "lastrunreport", "classfile", "resourcefile", "pidfile",
	"client_datadir", "certname",
}

// Settings are the paths of Puppet's state files.
type Settings struct {
	Config       string // puppet.conf itself, watched for changes
	StateDir     string
	DisabledLock string // agent_disabled_lockfile: {"disabled_message": "..."}
	CatalogLock  string // agent_catalog_run_lockfile: the applying agent's PID
	Summary      string // lastrunfile: last_run_summary.yaml
	Report       string // lastrunreport: last_run_report.yaml
	ClassFile    string // classes.txt
	ResourceFile string // resources.txt
	PIDFile      string // the puppet agent daemon's PID file
	// Catalog is the catalog Puppet caches after a run,
	// <client_datadir>/catalog/<certname>.json: it gives each resource's
	// namevar as Puppet resolved it, which resources.txt (titles only)
	// does not. "" when Puppet did not say where.
	Catalog string
}

// firstLoadWait is the longest a request waits for the first read of
// Puppet's settings before replying that they are still being read.
const firstLoadWait = 15 * time.Second

// settingsCache reads Puppet's settings once and again only when
// puppet.conf changes: `puppet config print` costs about a second of CPU,
// which no status request may pay.
type settingsCache struct {
	puppet  string
	confdir string

	mu       sync.Mutex
	cur      *Settings
	stamp    fileStamp // puppet.conf when cur was read
	err      error
	loading  bool
	loadedCh chan struct{} // closed when the first load ends
	// reloaded receives a value after every successful load, so that a
	// watcher learns of a reload that a request started.
	reloaded chan struct{}
}

type fileStamp struct {
	mod  time.Time
	size int64
	ok   bool
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size(), ok: true}
}

func newSettingsCache(puppet, confdir string) *settingsCache {
	return &settingsCache{puppet: puppet, confdir: confdir, loadedCh: make(chan struct{}), reloaded: make(chan struct{}, 1)}
}

// get returns the current settings. The first call loads them (waiting at
// most until ctx ends); later calls return the cached ones at once and, when
// puppet.conf changed since, start a reload in the background.
func (c *settingsCache) get(ctx context.Context) (*Settings, error) {
	c.mu.Lock()
	if c.cur == nil && c.err == nil && !c.loading {
		c.loading = true
		go c.load()
	}
	first := c.cur == nil && c.err == nil
	c.mu.Unlock()
	if first {
		// Wait for the load, but reply before the action's own timeout
		// would: a clear "still reading" beats a timed-out request.
		wait := firstLoadWait
		if dl, ok := ctx.Deadline(); ok {
			if left := time.Until(dl) - 2*time.Second; left < wait {
				wait = left
			}
		}
		timer := time.NewTimer(max(wait, 0))
		defer timer.Stop()
		select {
		case <-c.loadedCh:
		case <-timer.C:
			return nil, errors.New("Puppet's settings are still being read (puppet config print runs once, on the first Puppet request); try again shortly")
		case <-ctx.Done():
			return nil, fmt.Errorf("reading Puppet's settings: %w", ctx.Err())
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		if !c.loading {
			// The first load failed: try again, in the background, so
			// that installing or fixing Puppet needs no daemon restart.
			c.loading = true
			go c.load()
		}
		return nil, c.err
	}
	if !c.loading && stampOf(c.cur.Config) != c.stamp {
		c.loading = true
		go c.load()
	}
	return c.cur, nil
}

func (c *settingsCache) load() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, stamp, err := readSettings(ctx, c.puppet, c.confdir)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loading = false
	if err == nil {
		c.cur, c.stamp, c.err = s, stamp, nil
		select {
		case c.reloaded <- struct{}{}:
		default:
		}
	} else if c.cur == nil {
		c.err = err
	} else {
		// A failed reload keeps the last good settings and is not tried
		// again until puppet.conf changes once more: a broken puppet.conf
		// must not cost a fork per request or per poll.
		c.stamp = stampOf(c.cur.Config)
	}
	select {
	case <-c.loadedCh:
	default:
		close(c.loadedCh)
	}
}

// sync returns the current settings, first reading them in the calling
// goroutine when they were never read or puppet.conf changed since: the
// watcher's way, which must not return before a change is taken in. When a
// request's background reload is under way it returns the settings as they
// are; the reload then signals reloaded.
func (c *settingsCache) sync(ctx context.Context) (*Settings, error) {
	c.mu.Lock()
	stale := c.cur == nil || stampOf(c.cur.Config) != c.stamp
	if stale && !c.loading {
		c.loading = true
		c.mu.Unlock()
		c.load()
	} else {
		c.mu.Unlock()
	}
	select {
	case <-c.loadedCh:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return nil, c.err
	}
	return c.cur, nil
}

// readSettings runs `puppet config print --render-as json` for the agent
// section.
func readSettings(ctx context.Context, puppet, confdir string) (*Settings, fileStamp, error) {
	args := []string{"config", "print", "--render-as", "json", "--section", "agent"}
	if confdir != "" {
		args = append(args, "--confdir", confdir)
	}
	args = append(args, settingNames...)
	cmd := exec.CommandContext(ctx, puppet, args...)
	cmd.Env = append(os.Environ(), "LANG=C")
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
			return nil, fileStamp{}, fmt.Errorf("%s config print: %w: %s", puppet, err, firstLine(string(ee.Stderr)))
		}
		return nil, fileStamp{}, fmt.Errorf("%s config print: %w", puppet, err)
	}
	var m map[string]string
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fileStamp{}, fmt.Errorf("%s config print: unexpected output: %w", puppet, err)
	}
	s := &Settings{
		Config: m["config"], StateDir: m["statedir"], DisabledLock: m["agent_disabled_lockfile"],
		CatalogLock: m["agent_catalog_run_lockfile"], Summary: m["lastrunfile"], Report: m["lastrunreport"],
		ClassFile: m["classfile"], ResourceFile: m["resourcefile"], PIDFile: m["pidfile"],
	}
	if m["client_datadir"] != "" && m["certname"] != "" {
		s.Catalog = filepath.Join(m["client_datadir"], "catalog", m["certname"]+".json")
	}
	if s.DisabledLock == "" || s.Summary == "" || s.CatalogLock == "" {
		return nil, fileStamp{}, fmt.Errorf("%s config print: settings missing in %s", puppet, out)
	}
	return s, stampOf(s.Config), nil
}

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}
