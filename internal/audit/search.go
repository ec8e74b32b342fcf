package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Query selects request records; empty fields match everything.
type Query struct {
	Caller string    // exact caller id, e.g. "cert=bob.mcollective"
	Agent  string    // exact agent name
	Action string    // exact action name
	Node   string    // exact node identity (the collected file's name)
	Since  time.Time // records processed at or after Since
	Until  time.Time // records processed at or before Until
}

func (q Query) match(r *RequestRecord) bool {
	return (q.Caller == "" || r.Caller == q.Caller) &&
		(q.Agent == "" || r.Agent == q.Agent) &&
		(q.Action == "" || r.Action == q.Action) &&
		(q.Since.IsZero() || !r.Time.Before(q.Since)) &&
		(q.Until.IsZero() || !r.Time.After(q.Until))
}

// Record is one search result: a request and, when the node reported it, its
// completion.
type Record struct {
	Node       string          `json:"node"` // identity the collector stored it under
	Seq        uint64          `json:"seq"`
	Request    RequestRecord   `json:"request"`
	Completion *CompleteRecord `json:"completion,omitempty"`
	// Job is the end of the detached job the request started, once known.
	Job *JobRecord `json:"job,omitempty"`
	// Broken is why the request's line breaks its node's chain, or "" when
	// the link is intact; a broken record may have been edited or replayed.
	Broken string `json:"broken,omitempty"`
}

// Search scans the files a Collector wrote in dir and returns the request
// records matching q, joined with their completions and sorted by time.
// Lines that are not JSON are skipped (they show up as broken links).
func Search(dir string, q Query) ([]Record, error) {
	var files []string
	if q.Node != "" {
		if err := checkIdentity(q.Node); err != nil {
			return nil, fmt.Errorf("audit search: %w", err)
		}
		files = []string{filepath.Join(dir, q.Node+".log")}
	} else {
		var err error
		if files, err = filepath.Glob(filepath.Join(dir, "*.log")); err != nil {
			return nil, fmt.Errorf("audit search: %w", err)
		}
	}
	var out []Record
	for _, path := range files {
		recs, err := searchFile(path, q)
		if errors.Is(err, os.ErrNotExist) && q.Node != "" {
			continue // a node never heard from has no records
		}
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.Request.Time.Equal(b.Request.Time) {
			return a.Request.Time.Before(b.Request.Time)
		}
		if a.Node != b.Node {
			return a.Node < b.Node
		}
		return a.Seq < b.Seq
	})
	return out, nil
}

// searchFile returns the matches in one node's file. Completions follow their
// request in a node's log, so only matched requests are kept in memory.
func searchFile(path string, q Query) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit search: %w", err)
	}
	defer f.Close()
	node := strings.TrimSuffix(filepath.Base(path), ".log")
	br := bufio.NewReaderSize(f, 64<<10)
	var (
		c       chain
		out     []Record
		pending = map[string]int{} // request id -> index in out, awaiting completion
		jobs    = map[string]int{} // job id -> index in out, awaiting the job's end
	)
	for lineNo := 1; ; lineNo++ {
		line, _, err := readLine(br)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("audit search %s:%d: %w", path, lineNo, err)
		}
		seq, broken := c.link(line)
		var kind struct {
			Kind Kind `json:"kind"`
		}
		if json.Unmarshal(line, &kind) != nil {
			continue
		}
		switch kind.Kind {
		case KindRequest:
			var r RequestRecord
			if json.Unmarshal(line, &r) != nil || !q.match(&r) {
				continue
			}
			pending[r.RequestID] = len(out)
			if r.JobID != "" {
				jobs[r.JobID] = len(out)
			}
			out = append(out, Record{Node: node, Seq: seq, Request: r, Broken: broken})
		case KindComplete:
			var cr CompleteRecord
			if json.Unmarshal(line, &cr) != nil {
				continue
			}
			if i, ok := pending[cr.RequestID]; ok {
				out[i].Completion = &cr
				delete(pending, cr.RequestID)
			}
		case KindJob:
			var jr JobRecord
			if json.Unmarshal(line, &jr) != nil {
				continue
			}
			if i, ok := jobs[jr.JobID]; ok {
				out[i].Job = &jr
				delete(jobs, jr.JobID)
			}
		}
	}
}
