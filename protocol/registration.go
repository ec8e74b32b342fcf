package protocol

import "time"

// Protocol identifiers of registration announcements.
const (
	RegistrationProtocol       = "marionette.registration.1"
	SecureRegistrationProtocol = "marionette.secure_registration.1"
)

// Registration is a node's announcement of itself: who it is and what it
// hosts, so collectors can keep an inventory without asking every node.
type Registration struct {
	Protocol    string         `json:"protocol"`
	Identity    string         `json:"identity"`
	Collectives []string       `json:"collectives"`
	Agents      []string       `json:"agents"`
	Facts       map[string]any `json:"facts"`
	Classes     []string       `json:"classes"`
	Version     string         `json:"version"`
	Time        int64          `json:"time"` // when the node built it, Unix nanoseconds
	// Interval is the node's periodic registration interval in seconds; 0
	// means it announces only at start and on change. Readers use it to
	// decide when a node counts as silent.
	Interval int64 `json:"interval,omitempty"`
}

// Created returns when the announcement was built.
func (r *Registration) Created() time.Time { return time.Unix(0, r.Time) }

// SecureRegistration is the signed envelope of an announcement, signed by the
// node's own key like a reply.
type SecureRegistration struct {
	Protocol     string `json:"protocol"`
	Registration []byte `json:"registration"` // the exact encoded Registration
	Signature    []byte `json:"signature"`    // Ed25519 over Registration
	Cert         []byte `json:"cert"`         // the node's DER certificate
}
