package audit

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// The two records every request writes are encoded without reflection: at
// tens of thousands of requests per second, encoding/json's reflection was
// a third of what an audit append cost (docs/benchmarks.md, issue 14). The
// output is byte for byte what encodeJSON gives (TestRecordEncodingMatchesJSON
// and FuzzRecordEncoding compare them); a record with anything the fast path
// does not handle (arguments, a time outside years 0-9999) goes through
// encodeJSON as before.

// encodeRecord returns rec's line body, through the fast path when rec is a
// request or completion record it can encode.
func encodeRecord(rec any) ([]byte, error) {
	switch r := rec.(type) {
	case *RequestRecord:
		if b, ok := r.appendJSON(nil); ok {
			return b, nil
		}
	case *CompleteRecord:
		if b, ok := r.appendJSON(nil); ok {
			return b, nil
		}
	}
	return encodeJSON(rec)
}

// appendJSON appends r as encodeJSON would encode it; false when r has
// arguments or a time the fast path leaves to encoding/json.
func (r *RequestRecord) appendJSON(b []byte) ([]byte, bool) {
	if len(r.Arguments) > 0 || !plainTime(r.Time) || !plainTime(r.RequestTime) {
		return nil, false
	}
	b = appendOpening(b, r.Kind, r.Time, r.RequestID)
	b = append(b, `,"request_time":`...)
	b = appendTime(b, r.RequestTime)
	b = append(b, `,"caller":`...)
	b = appendString(b, r.Caller)
	if r.Signer != "" {
		b = append(b, `,"signer":`...)
		b = appendString(b, r.Signer)
	}
	b = append(b, `,"sender":`...)
	b = appendString(b, r.Sender)
	b = append(b, `,"collective":`...)
	b = appendString(b, r.Collective)
	b = append(b, `,"agent":`...)
	b = appendString(b, r.Agent)
	b = append(b, `,"action":`...)
	b = appendString(b, r.Action)
	b = append(b, `,"decision":`...)
	b = appendString(b, string(r.Decision))
	if r.PolicyLine != "" {
		b = append(b, `,"policy_line":`...)
		b = appendString(b, r.PolicyLine)
	}
	return appendClosing(b, r.Node, r.JobID), true
}

// appendJSON appends r as encodeJSON would encode it; false for a time the
// fast path leaves to encoding/json.
func (r *CompleteRecord) appendJSON(b []byte) ([]byte, bool) {
	if !plainTime(r.Time) {
		return nil, false
	}
	b = appendOpening(b, r.Kind, r.Time, r.RequestID)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	if r.StatusMessage != "" {
		b = append(b, `,"status_message":`...)
		b = appendString(b, r.StatusMessage)
	}
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendInt(b, r.DurationMS, 10)
	return appendClosing(b, r.Node, r.JobID), true
}

// plainTime reports whether t is in the years time.Time.MarshalJSON
// accepts; outside them encoding/json fails, and so must the record.
func plainTime(t time.Time) bool {
	y := t.Year()
	return y >= 0 && y <= 9999
}

// appendTime appends t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds, quoted) for a plainTime t.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString appends s as a JSON string, escaped as encodeJSON escapes it
// (no HTML escaping): printable ASCII is copied, everything else takes
// encoding/json's own rules through encodeJSON.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			enc, _ := encodeJSON(s) // a string always encodes
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendOpening appends the opening brace and the fields both records begin
// with: kind, time and request_id.
func appendOpening(b []byte, kind Kind, t time.Time, requestID string) []byte {
	b = append(b, `{"kind":`...)
	b = appendString(b, string(kind))
	b = append(b, `,"time":`...)
	b = appendTime(b, t)
	b = append(b, `,"request_id":`...)
	return appendString(b, requestID)
}

// appendClosing appends the fields both records end with, node and the
// optional job_id, and the closing brace.
func appendClosing(b []byte, node, jobID string) []byte {
	b = append(b, `,"node":`...)
	b = appendString(b, node)
	if jobID != "" {
		b = append(b, `,"job_id":`...)
		b = appendString(b, jobID)
	}
	return append(b, '}')
}
