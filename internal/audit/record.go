// Package audit writes, verifies, collects and searches Marionette's audit
// trail (docs/security.md, "Auditing").
//
// A node appends one JSON line per request it processes past signature
// verification (allowed and denied) and one per completion. Every line carries
// "seq" (1, 2, 3, ...) and "prev", the hex SHA-256 of the previous line's exact
// bytes without its newline ("" for the first line), so editing, removing or
// reordering lines breaks the chain. The same line bytes are published to
// <collective>.audit.<identity>, where a Collector stores them per node; each
// collected file is therefore itself a verifiable chain.
package audit

import "time"

// Kind tells request records from completion records in a log line.
type Kind string

// The record kinds.
const (
	KindRequest  Kind = "request"
	KindComplete Kind = "complete"
	// KindJob records the end of a detached job, after its request's
	// completion record (which says the job started).
	KindJob Kind = "job"
)

// Decision is the authorization outcome recorded for a request.
type Decision string

// The decisions.
const (
	Allow Decision = "allow"
	Deny  Decision = "deny"
)

// Mask replaces the value of a secret argument in audit records.
const Mask = "********"

// RequestRecord is written when a node accepts a request for processing,
// whether authorization then allows or denies it.
type RequestRecord struct {
	Kind        Kind      `json:"kind"` // always KindRequest
	Time        time.Time `json:"time"` // when the node processed it
	RequestID   string    `json:"request_id"`
	RequestTime time.Time `json:"request_time"` // the request's created time
	Caller      string    `json:"caller"`       // cert=<certname>
	// Signer is the certname that signed the request: the caller's own, or
	// a privileged front end's acting for the caller.
	Signer     string         `json:"signer,omitempty"`
	Sender     string         `json:"sender"` // the client identity, checked to be the signer's certname
	Collective string         `json:"collective"`
	Agent      string         `json:"agent"`
	Action     string         `json:"action"`
	Arguments  map[string]any `json:"arguments,omitempty"` // secrets masked, see MaskArguments
	Decision   Decision       `json:"decision"`
	PolicyLine string         `json:"policy_line,omitempty"` // e.g. "rpcutil.policy:3" or "default deny"
	Node       string         `json:"node"`                  // the auditing node's identity
	// JobID is set for a request asking for a detached job (mco rpc
	// --async): the id its job has if it starts, and its JobRecord's.
	JobID string `json:"job_id,omitempty"`
}

// CompleteRecord is written when a request's action finished (or was refused),
// and joins its request record by RequestID.
type CompleteRecord struct {
	Kind          Kind      `json:"kind"` // always KindComplete
	Time          time.Time `json:"time"`
	RequestID     string    `json:"request_id"`
	Status        int       `json:"status"` // a protocol.StatusCode
	StatusMessage string    `json:"status_message,omitempty"`
	DurationMS    int64     `json:"duration_ms"`
	Node          string    `json:"node"`
	JobID         string    `json:"job_id,omitempty"` // as in the RequestRecord
}

// JobRecord is written when a detached job ended (or was found lost), by
// the daemon watching the job spool — the one that started it, or the next
// one after a restart. RequestID and JobID are the starting request's id,
// so the job's lines join its request's.
type JobRecord struct {
	Kind      Kind      `json:"kind"` // always KindJob
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id"`
	JobID     string    `json:"job_id"`
	Agent     string    `json:"agent"`
	Action    string    `json:"action"`
	Caller    string    `json:"caller"`
	// State is finished, timeout or lost (its process ended without a
	// record).
	State string `json:"state"`
	// ExitCode is the job process's (-1 when lost).
	ExitCode      int    `json:"exit_code"`
	Status        int    `json:"status"` // the action's protocol.StatusCode
	StatusMessage string `json:"status_message,omitempty"`
	DurationMS    int64  `json:"duration_ms"`
	Node          string `json:"node"`
}

// MaskArguments returns args with the values of the named secret inputs
// replaced by Mask. It copies rather than edits in place because the caller's
// map is the one the action will run with.
func MaskArguments(args map[string]any, secrets []string) map[string]any {
	if len(args) == 0 || len(secrets) == 0 {
		return args
	}
	masked := make(map[string]any, len(args))
	for k, v := range args {
		masked[k] = v
	}
	for _, name := range secrets {
		if _, ok := masked[name]; ok {
			masked[name] = Mask
		}
	}
	return masked
}
