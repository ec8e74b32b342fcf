// Package protocol defines Marionette's wire messages: requests, replies, their
// signed envelopes, status codes and the NATS subjects they travel on.
//
// Every message is JSON. A request is encoded once by the client, and those exact
// bytes are what the signature covers; nodes decode the envelope, verify the
// signature over the embedded bytes, and only then decode the request itself.
package protocol

import (
	"fmt"
	"time"

	"github.com/marionette/mco/filter"
)

// Protocol identifiers carried in every message. A node drops any message whose
// identifier it does not know.
const (
	RequestProtocol = "marionette.request.1"
	// AsyncRequestProtocol marks a request with Async set (detached job):
	// version 2 is version 1 plus the "async" field. A node that knows only
	// version 1 drops such a request unrun, rather than ignore the field it
	// does not know and run the action in its own lifetime while the client
	// waits for a job id; the client names the nodes that did not start a
	// job.
	AsyncRequestProtocol  = "marionette.request.2"
	SecureRequestProtocol = "marionette.secure_request.1"
	ReplyProtocol         = "marionette.reply.1"
	SecureReplyProtocol   = "marionette.secure_reply.1"
)

// StatusCode is an MCollective RPC status code.
type StatusCode int

// MCollective's status codes.
const (
	OK            StatusCode = 0 // the action ran and succeeded
	Aborted       StatusCode = 1 // the action failed (also: timeout, authorization denied)
	UnknownAction StatusCode = 2 // the agent has no such action
	MissingData   StatusCode = 3 // a required input was not given
	InvalidData   StatusCode = 4 // an input failed validation
	UnknownError  StatusCode = 5 // anything else, e.g. a failed audit write
)

// String names the status as MCollective's clients print it.
func (s StatusCode) String() string {
	switch s {
	case OK:
		return "OK"
	case Aborted:
		return "Aborted"
	case UnknownAction:
		return "Unknown Action"
	case MissingData:
		return "Missing Data"
	case InvalidData:
		return "Invalid Data"
	case UnknownError:
		return "Unknown Error"
	}
	return fmt.Sprintf("Status %d", int(s))
}

// Request is an RPC request as the client built it. Its encoded bytes are signed.
type Request struct {
	Protocol   string         `json:"protocol"`
	ID         string         `json:"id"`
	Sender     string         `json:"sender"` // client identity (host or program)
	CallerID   string         `json:"caller"` // "cert=<certname>"
	Collective string         `json:"collective"`
	Agent      string         `json:"agent"`
	Action     string         `json:"action"`
	Filter     *filter.Filter `json:"filter,omitempty"`
	ReplyTo    string         `json:"reply_to,omitempty"`
	Time       int64          `json:"time"` // creation time, Unix nanoseconds
	TTL        int64          `json:"ttl"`  // seconds
	Data       map[string]any `json:"data,omitempty"`
	// ProcessResults false means fire-and-forget: nodes run the action but do not reply.
	ProcessResults bool `json:"process_results"`
	// Async asks the node to run the action as a detached job, outside the
	// daemon's lifetime, and to reply at once with the job's id (Reply.JobID,
	// the request's own id). Only with Protocol AsyncRequestProtocol; nodes
	// refuse any other combination.
	Async bool `json:"async,omitempty"`
}

// Created returns the request's creation time.
func (r *Request) Created() time.Time { return time.Unix(0, r.Time) }

// SecureRequest is the signed envelope of a request.
type SecureRequest struct {
	Protocol  string `json:"protocol"`
	Request   []byte `json:"request"`   // the exact encoded Request
	Signature []byte `json:"signature"` // Ed25519 over Request
	Cert      []byte `json:"cert"`      // the signer's DER certificate
}

// Reply is one node's answer to a request.
type Reply struct {
	Protocol  string         `json:"protocol"`
	RequestID string         `json:"request_id"`
	Sender    string         `json:"sender"` // node identity
	Agent     string         `json:"agent"`
	Action    string         `json:"action"`
	Status    StatusCode     `json:"statuscode"`
	Message   string         `json:"statusmsg"`
	Data      map[string]any `json:"data,omitempty"`
	Time      int64          `json:"time"` // Unix nanoseconds
	// JobID is set in the reply to an Async request when the node started
	// the job: its id, to collect its result with the job agent. A reply to
	// an Async request without it means no job runs there.
	JobID string `json:"job_id,omitempty"`
}

// SecureReply is the signed envelope of a reply, signed by the node's own key.
type SecureReply struct {
	Protocol  string `json:"protocol"`
	Reply     []byte `json:"reply"`
	Signature []byte `json:"signature"`
	Cert      []byte `json:"cert"` // the node's DER certificate
}

// MaxRequestIDLength is the longest request id a node accepts. Clients send
// 32 hex digits; the bound keeps the ids a node remembers and logs small.
const MaxRequestIDLength = 64

// CheckRequestID reports whether id is a usable request id: 1 to
// MaxRequestIDLength letters, digits, '_' or '-'. The id becomes a token of
// the reply subject and a key of the node's replay cache, so nothing else is
// allowed.
func CheckRequestID(id string) error {
	if id == "" || len(id) > MaxRequestIDLength {
		return fmt.Errorf("request id of %d bytes: want 1 to %d", len(id), MaxRequestIDLength)
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-') {
			return fmt.Errorf("request id %q: byte %d is not a letter, digit, '_' or '-'", id[:min(len(id), 16)], i)
		}
	}
	return nil
}
