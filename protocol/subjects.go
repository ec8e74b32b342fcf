package protocol

import (
	"crypto/sha256"
	"encoding/hex"
)

// BroadcastSubject is where requests for an agent go to every node hosting it.
func BroadcastSubject(collective, agent string) string {
	return collective + ".agent." + agent
}

// NodeSubject is where requests directed at one node go.
func NodeSubject(collective, identity string) string {
	return collective + ".node." + identity
}

// CallerHash is the short, subject-safe token derived from a client's certname.
// The broker computes it from the verified certificate and lets the client
// subscribe only to its own reply subjects.
func CallerHash(certname string) string {
	sum := sha256.Sum256([]byte(certname))
	return hex.EncodeToString(sum[:8])
}

// ReplyPrefix is the wildcard-free stem of a caller's reply subjects.
func ReplyPrefix(collective, callerHash string) string {
	return collective + ".reply." + callerHash
}

// ReplySubject is where nodes send replies for one request.
func ReplySubject(collective, callerHash, requestID string) string {
	return ReplyPrefix(collective, callerHash) + "." + requestID
}

// RegistrationSubject is where a node publishes its announcements.
func RegistrationSubject(collective, identity string) string {
	return collective + ".registration." + identity
}

// AuditSubject is where a node publishes its audit records.
func AuditSubject(collective, identity string) string {
	return collective + ".audit." + identity
}
