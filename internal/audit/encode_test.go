package audit

import (
	"bytes"
	"testing"
	"time"
)

// The fast path must write exactly the bytes encoding/json writes: lines
// are hashed into the chain, and `mco audit search` and the collector read
// them with encoding/json.
func TestRecordEncodingMatchesJSON(t *testing.T) {
	when := time.Date(2026, 12, 2, 10, 30, 0, 123456789, time.UTC)
	zone := time.FixedZone("", -7*3600-30*60)
	full := RequestRecord{
		Kind: KindRequest, Time: when, RequestID: "0123456789abcdef0123456789abcdef", RequestTime: when.In(zone),
		Caller: "cert=alice.mcollective", Signer: "alice.mcollective", Sender: "alice.mcollective",
		Collective: "mcollective", Agent: "rpcutil", Action: "ping", Decision: Allow,
		PolicyLine: "rpcutil.policy:3: allow cert=alice.mcollective ping", Node: "node1.example", JobID: "job1",
	}
	odd := full
	odd.Caller = "cert=<alice>&\"bob\"\\\u2028\u2029\x7f\x01\n\t\xff é"
	odd.PolicyLine, odd.Signer, odd.JobID = "", "", ""
	odd.Time = time.Time{}
	withArgs := full
	withArgs.Arguments = map[string]any{"package": "openssl", "secret": Mask}
	farFuture := full
	farFuture.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)

	for name, rec := range map[string]any{
		"request":             &full,
		"request, odd":        &odd,
		"request, arguments":  &withArgs,
		"request, year 10000": &farFuture,
		"complete": &CompleteRecord{Kind: KindComplete, Time: when, RequestID: full.RequestID, Status: 0,
			StatusMessage: "OK", DurationMS: 12, Node: "node1.example", JobID: "job1"},
		"complete, empty":    &CompleteRecord{},
		"complete, negative": &CompleteRecord{Kind: KindComplete, Status: -1, DurationMS: -5, StatusMessage: "timeout after 10s <&>"},
	} {
		t.Run(name, func(t *testing.T) { compareEncodings(t, rec) })
	}
}

// compareEncodings checks encodeRecord against encodeJSON for rec, errors
// included.
func compareEncodings(t *testing.T, rec any) {
	t.Helper()
	want, wantErr := encodeJSON(rec)
	got, gotErr := encodeRecord(rec)
	if (wantErr != nil) != (gotErr != nil) {
		t.Fatalf("error %v, encoding/json's %v", gotErr, wantErr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("fast path wrote\n%s\nencoding/json\n%s", got, want)
	}
}

func FuzzRecordEncoding(f *testing.F) {
	f.Add("cert=alice.mcollective", "rpcutil", "ping", "rpcutil.policy:3", "OK", int64(1764671400123456789), 0, int64(3))
	f.Add("cert=<x>\"\\\u2028", "\xff\xfe", "a\x00b", "", "\u00e9\t", int64(-62135596800000000), -1, int64(-1))
	f.Fuzz(func(t *testing.T, caller, agent, action, rule, msg string, nanos int64, status int, ms int64) {
		when := time.Unix(0, nanos).UTC()
		compareEncodings(t, &RequestRecord{
			Kind: KindRequest, Time: when, RequestID: msg, RequestTime: when.In(time.FixedZone("", status%50400)),
			Caller: caller, Signer: rule, Sender: caller, Collective: agent, Agent: agent, Action: action,
			Decision: Deny, PolicyLine: rule, Node: action, JobID: msg,
		})
		compareEncodings(t, &CompleteRecord{
			Kind: KindComplete, Time: when, RequestID: caller, Status: status, StatusMessage: msg,
			DurationMS: ms, Node: agent, JobID: rule,
		})
	})
}
