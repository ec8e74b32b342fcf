package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
)

// DecodeSecureRequest decodes a request envelope exactly as json.Unmarshal
// would (same values, an error for the same inputs, json.Unmarshal's own
// error message), faster for the form every sender produces: the four
// fields in order, as json.Marshal writes them. A node decodes an envelope
// per request and a client one per reply; encoding/json first validates
// the whole message, then decodes it by reflection, base64 included.
// Anything else (spaces, other key order or case, escapes, null, unknown
// fields) is left to json.Unmarshal.
func DecodeSecureRequest(data []byte, env *SecureRequest) error {
	var f [4][]byte
	if decodeEnvelope(data, &requestKeys, &f) {
		*env = SecureRequest{Protocol: intern(f[0], SecureRequestProtocol), Request: f[1], Signature: f[2], Cert: f[3]}
		return nil
	}
	*env = SecureRequest{}
	return json.Unmarshal(data, env)
}

// DecodeSecureReply is DecodeSecureRequest for a reply envelope.
func DecodeSecureReply(data []byte, env *SecureReply) error {
	var f [4][]byte
	if decodeEnvelope(data, &replyKeys, &f) {
		*env = SecureReply{Protocol: intern(f[0], SecureReplyProtocol), Reply: f[1], Signature: f[2], Cert: f[3]}
		return nil
	}
	*env = SecureReply{}
	return json.Unmarshal(data, env)
}

// intern is string(b), without an allocation when b is the expected value.
func intern(b []byte, expected string) string {
	if string(b) == expected {
		return expected
	}
	return string(b)
}

// The envelopes' keys as json.Marshal writes them: `{"key":` for the first,
// `,"key":` for the others.
var (
	requestKeys = [4]string{`{"protocol":`, `,"request":`, `,"signature":`, `,"cert":`}
	replyKeys   = [4]string{`{"protocol":`, `,"reply":`, `,"signature":`, `,"cert":`}
)

// decodeEnvelope reads `{"protocol":"text","x":"base64","signature":"base64",
// "cert":"base64"}` with nothing else in it: the first string as is, the
// others base64-decoded into one fresh buffer (each slice capped at its
// own end, so appending to one cannot overwrite the next). It reports false
// for anything else, without having decided anything: the caller then
// leaves the whole message to encoding/json.
func decodeEnvelope(data []byte, keys *[4]string, out *[4][]byte) bool {
	var raw [4][]byte
	rest := data
	size := 0
	for i, key := range keys {
		if !bytes.HasPrefix(rest, []byte(key)) {
			return false
		}
		s, after, ok := plainString(rest[len(key):])
		if !ok {
			return false
		}
		raw[i], rest = s, after
		if i > 0 {
			size += base64.StdEncoding.DecodedLen(len(s))
		}
	}
	if len(rest) != 1 || rest[0] != '}' {
		return false
	}
	buf := make([]byte, size)
	out[0] = raw[0]
	for i := 1; i < 4; i++ {
		n, err := base64.StdEncoding.Decode(buf, raw[i])
		if err != nil {
			return false
		}
		out[i] = buf[:n:n]
		buf = buf[base64.StdEncoding.DecodedLen(len(raw[i])):]
	}
	return true
}

// plainString reads a JSON string made only of printable ASCII without
// escapes (which it then means literally), returning its contents and what
// follows it.
func plainString(b []byte) (s, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, nil, false
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return b[1:i], b[i+1:], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, nil, false
		}
	}
	return nil, nil, false
}

// EncodeSecureReply encodes a reply envelope to exactly the bytes
// json.Marshal writes for it, without reflection: a node encodes one per
// reply. A protocol string json.Marshal would escape is left to it.
func EncodeSecureReply(env *SecureReply) ([]byte, error) {
	if env.Reply == nil || env.Signature == nil || env.Cert == nil || !plainText(env.Protocol) {
		return json.Marshal(env)
	}
	enc := base64.StdEncoding
	n := len(replyKeys[0]) + len(env.Protocol) + 2 + len(replyKeys[1]) + enc.EncodedLen(len(env.Reply)) + 2 +
		len(replyKeys[2]) + enc.EncodedLen(len(env.Signature)) + 2 + len(replyKeys[3]) + enc.EncodedLen(len(env.Cert)) + 2 + 1
	b := make([]byte, 0, n)
	b = append(append(append(b, replyKeys[0]...), '"'), env.Protocol...)
	b = append(append(append(b, '"'), replyKeys[1]...), '"')
	b = append(enc.AppendEncode(b, env.Reply), '"')
	b = append(append(b, replyKeys[2]...), '"')
	b = append(enc.AppendEncode(b, env.Signature), '"')
	b = append(append(b, replyKeys[3]...), '"')
	b = append(enc.AppendEncode(b, env.Cert), '"', '}')
	return b, nil
}

// plainText reports whether json.Marshal writes s as is between quotes:
// printable ASCII other than the characters it escapes.
func plainText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
