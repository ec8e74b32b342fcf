package puppetagent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// Status is the Puppet agent's state as the status action and the puppet
// data plugin report it. It is read from Puppet's own files on every
// request: a handful of stat and small reads, no fork.
type Status struct {
	Applying       bool
	ApplyingSince  time.Time
	Enabled        bool
	DisableMessage string
	DaemonPresent  bool
	DaemonPID      int
	Idling         bool
	LastRun        time.Time // zero when Puppet never ran
	Status         string    // applying, disabled, idling or stopped
}

// readDisabled reads agent_disabled.lock: absent means enabled.
func readDisabled(path string) (disabled bool, message string, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, "", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("reading %s: %w", path, err)
	}
	var lock struct {
		Message string `json:"disabled_message"`
	}
	// An old or hand-made lock file may be empty or not JSON: it still
	// disables Puppet, so it still reads as disabled.
	if len(bytes.TrimSpace(b)) > 0 {
		_ = json.Unmarshal(b, &lock)
	}
	return true, lock.Message, nil
}

// writeDisabled creates the lock file Puppet itself writes for
// `puppet agent --disable MESSAGE`, atomically.
func writeDisabled(path, message string) error {
	b, err := json.Marshal(struct {
		Message string `json:"disabled_message"`
	}{message})
	if err != nil {
		return err
	}
	tmp := path + ".mco-tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// summaryCache parses last_run_summary.yaml again only when it changed.
type summaryCache struct {
	mu    sync.Mutex
	path  string
	stamp fileStamp
	sum   *runSummary
	err   error
}

// runSummary is last_run_summary.yaml, as written by Puppet after a run.
type runSummary struct {
	Raw       map[string]any
	Version   struct{ Config, Puppet string }
	Resources map[string]float64
	Time      map[string]float64
	Changes   map[string]float64
	Events    map[string]float64
	LastRun   time.Time
}

// get returns the parsed summary, nil when Puppet never ran.
func (c *summaryCache) get(path string) (*runSummary, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := stampOf(path)
	if path == c.path && st == c.stamp {
		return c.sum, c.err
	}
	c.path, c.stamp = path, st
	c.sum, c.err = nil, nil
	if !st.ok {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		c.err = fmt.Errorf("reading %s: %w", path, err)
		return nil, c.err
	}
	c.sum, c.err = parseSummary(b)
	if c.err != nil {
		c.err = fmt.Errorf("%s: %w", path, c.err)
	}
	return c.sum, c.err
}

func parseSummary(b []byte) (*runSummary, error) {
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("not a last_run_summary: %w", err)
	}
	s := &runSummary{Raw: jsonable(raw).(map[string]any)}
	s.Resources = numbers(raw["resources"])
	s.Time = numbers(raw["time"])
	s.Changes = numbers(raw["changes"])
	s.Events = numbers(raw["events"])
	if v, ok := raw["version"].(map[string]any); ok {
		s.Version.Config = scalar(v["config"])
		s.Version.Puppet = scalar(v["puppet"])
	}
	if lr := s.Time["last_run"]; lr > 0 {
		s.LastRun = time.Unix(int64(lr), 0)
	}
	return s, nil
}

func numbers(v any) map[string]float64 {
	out := map[string]float64{}
	m, _ := v.(map[string]any)
	for k, x := range m {
		switch n := x.(type) {
		case int:
			out[k] = float64(n)
		case int64:
			out[k] = float64(n)
		case float64:
			out[k] = n
		}
	}
	return out
}

func scalar(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// jsonable turns YAML's decoded maps (which may have non-string keys) into
// JSON-encodable values.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonable(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonable(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonable(e)
		}
		return out
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	return v
}

// readReport reads last_run_report.yaml for the resource type distribution
// and, when asked, the run's log lines. Puppet writes it with Ruby object
// tags, which a plain YAML decode ignores.
func readReport(path string, logs bool) (types map[string]int, lines []any, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]int{}, []any{}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var rep struct {
		Statuses map[string]struct {
			Type string `yaml:"resource_type"`
		} `yaml:"resource_statuses"`
		Logs []struct {
			Level   string `yaml:"level"`
			Message string `yaml:"message"`
			Source  string `yaml:"source"`
			Time    any    `yaml:"time"`
		} `yaml:"logs"`
	}
	if err := yaml.Unmarshal(b, &rep); err != nil {
		return nil, nil, fmt.Errorf("%s: not a Puppet report: %w", path, err)
	}
	types = map[string]int{}
	for _, s := range rep.Statuses {
		types[s.Type]++
	}
	lines = []any{}
	if logs {
		for _, l := range rep.Logs {
			lines = append(lines, map[string]any{
				"level": l.Level, "msg": l.Message, "source": l.Source, "time": jsonable(l.Time),
			})
		}
	}
	return types, lines, nil
}
