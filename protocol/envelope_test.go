package protocol

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// The fast path must give exactly what encoding/json gives: same values
// (nil or empty slices included), an error for the same inputs.
func checkSameAsJSON(t *testing.T, data []byte) {
	t.Helper()
	var want, got SecureRequest
	werr := json.Unmarshal(data, &want)
	gerr := DecodeSecureRequest(data, &got)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%q: json.Unmarshal error %v, DecodeSecureRequest error %v", data, werr, gerr)
	}
	if werr == nil && !reflect.DeepEqual(want, got) {
		t.Fatalf("%q: json.Unmarshal gives %#v, DecodeSecureRequest %#v", data, want, got)
	}
	var wantR, gotR SecureReply
	werr = json.Unmarshal(data, &wantR)
	gerr = DecodeSecureReply(data, &gotR)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%q: json.Unmarshal error %v, DecodeSecureReply error %v", data, werr, gerr)
	}
	if werr == nil && !reflect.DeepEqual(wantR, gotR) {
		t.Fatalf("%q: json.Unmarshal gives %#v, DecodeSecureReply %#v", data, wantR, gotR)
	}
}

func TestDecodeEnvelopesAsEncodingJSON(t *testing.T) {
	marshal := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	req := marshal(&SecureRequest{Protocol: SecureRequestProtocol, Request: []byte(`{"id":"x"}`), Signature: []byte{1, 2, 3}, Cert: []byte("der")})
	rep := marshal(&SecureReply{Protocol: SecureReplyProtocol, Reply: []byte(`{"id":"x"}`), Signature: []byte{4}, Cert: []byte("d")})
	tests := []struct {
		name string
		data string
		fast bool // the fast path takes it (else encoding/json does)
	}{
		{"request as marshalled", req, true},
		{"reply as marshalled", rep, true},
		{"empty byte fields", marshal(&SecureRequest{Protocol: "p", Request: []byte{}, Signature: []byte{}, Cert: []byte{}}), true},
		{"nil byte fields marshal as null", marshal(&SecureRequest{Protocol: "p"}), false},
		{"spaces", strings.ReplaceAll(req, `,"`, `, "`), false},
		{"other key order", `{"cert":"AQ==","protocol":"p","request":"AQ==","signature":"AQ=="}`, false},
		{"key case", strings.Replace(req, `"protocol"`, `"Protocol"`, 1), false},
		{"escaped protocol", strings.Replace(req, SecureRequestProtocol, `a\u0062`, 1), false},
		{"unknown field", strings.TrimSuffix(req, "}") + `,"x":1}`, false},
		{"duplicate field", strings.TrimSuffix(req, "}") + `,"cert":"AQ=="}`, false},
		{"trailing garbage", req + "x", false},
		{"trailing space", req + " ", false},
		{"bad base64", strings.Replace(req, `"signature":"`, `"signature":"!`, 1), false},
		{"base64 with an escaped newline", strings.Replace(req, `"signature":"`, `"signature":"\n`, 1), false},
		{"truncated", req[:len(req)-3], false},
		{"not JSON", "nope", false},
		{"empty", "", false},
		{"non-ASCII protocol", strings.Replace(req, SecureRequestProtocol, "é", 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkSameAsJSON(t, []byte(tt.data))
			keys := &requestKeys
			if strings.Contains(tt.data, `"reply"`) {
				keys = &replyKeys
			}
			var f [4][]byte
			if got := decodeEnvelope([]byte(tt.data), keys, &f); got != tt.fast {
				t.Errorf("fast path taken = %v, want %v", got, tt.fast)
			}
		})
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(`{"protocol":"mco:secure-request:1","request":"e30=","signature":"AQ==","cert":"AQID"}`))
	f.Add([]byte(`{"protocol":"p","reply":"","signature":"AQ==","cert":"AQID"}`))
	f.Add([]byte(`{"protocol":"p","request":"e30","signature":"AQ==","cert":"AQID"}`))
	f.Fuzz(func(t *testing.T, data []byte) { checkSameAsJSON(t, data) })
}

func BenchmarkDecodeSecureRequest(b *testing.B) {
	data, err := json.Marshal(&SecureRequest{Protocol: SecureRequestProtocol, Request: make([]byte, 400), Signature: make([]byte, 64), Cert: make([]byte, 450)})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			var env SecureRequest
			if err := json.Unmarshal(data, &env); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DecodeSecureRequest", func(b *testing.B) {
		for b.Loop() {
			var env SecureRequest
			if err := DecodeSecureRequest(data, &env); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestEncodeSecureReplyAsEncodingJSON(t *testing.T) {
	tests := []SecureReply{
		{Protocol: SecureReplyProtocol, Reply: []byte(`{"a":"<b>"}`), Signature: make([]byte, 64), Cert: []byte("der")},
		{Protocol: "p", Reply: []byte{}, Signature: []byte{}, Cert: []byte{}},
		{Protocol: "p"}, // nil slices: null
		{Protocol: "<&>", Reply: []byte("x"), Signature: []byte("y"), Cert: []byte("z")},
		{Protocol: "é\"\\\n", Reply: []byte("x"), Signature: []byte("y"), Cert: []byte("z")},
		{Protocol: "", Reply: []byte{0xff}, Signature: []byte{0}, Cert: []byte{1, 2}},
	}
	for _, env := range tests {
		want, err := json.Marshal(&env)
		if err != nil {
			t.Fatal(err)
		}
		got, err := EncodeSecureReply(&env)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("EncodeSecureReply(%+v) = %s, json.Marshal %s", env, got, want)
		}
	}
}

func FuzzEncodeSecureReply(f *testing.F) {
	f.Add("p", []byte("r"), []byte("s"), []byte("c"))
	f.Fuzz(func(t *testing.T, p string, r, s, c []byte) {
		env := SecureReply{Protocol: p, Reply: r, Signature: s, Cert: c}
		want, err := json.Marshal(&env)
		if err != nil {
			t.Fatal(err)
		}
		got, err := EncodeSecureReply(&env)
		if err != nil || string(got) != string(want) {
			t.Fatalf("EncodeSecureReply = %s, %v; json.Marshal %s", got, err, want)
		}
	})
}
