// Package registration implements node registration: nodes announce
// themselves (identity, collectives, agents, facts, classes, version, time)
// in a signed envelope; a collector verifies the announcements and keeps the
// latest one per node in a directory, which the inventory discovery method
// and `mco nodes` read.
package registration

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/protocol"
)

// Source is what a node announces; *server.Server satisfies it.
type Source interface {
	Identity() string
	Collectives() []string
	AgentNames() []string
	Facts() map[string]any
	Classes() []string
	Version() string
}

// Build takes an announcement of src at now; interval is the node's
// periodic registration interval (0: only at start and on change).
func Build(src Source, now time.Time, interval time.Duration) *protocol.Registration {
	return &protocol.Registration{
		Protocol:    protocol.RegistrationProtocol,
		Identity:    src.Identity(),
		Collectives: src.Collectives(),
		Agents:      src.AgentNames(),
		Facts:       src.Facts(),
		Classes:     src.Classes(),
		Version:     src.Version(),
		Time:        now.UnixNano(),
		Interval:    int64(interval / time.Second),
	}
}

// Seal encodes an announcement and signs it with the node's key.
func Seal(id *security.Identity, r *protocol.Registration) ([]byte, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding announcement: %w", err)
	}
	env, err := json.Marshal(&protocol.SecureRegistration{
		Protocol: protocol.SecureRegistrationProtocol, Registration: body,
		Signature: id.Sign(body), Cert: id.Cert.Raw,
	})
	if err != nil {
		return nil, fmt.Errorf("encoding announcement envelope: %w", err)
	}
	return env, nil
}

// ErrRejected wraps every reason an announcement is not accepted.
var ErrRejected = errors.New("announcement rejected")

// Open verifies a sealed announcement: the signature must be made by a
// trusted node certificate whose certname is the announced identity.
func Open(v *security.Verifier, data []byte) (*protocol.Registration, error) {
	var env protocol.SecureRegistration
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: undecodable envelope: %v", ErrRejected, err)
	}
	if env.Protocol != protocol.SecureRegistrationProtocol {
		return nil, fmt.Errorf("%w: unknown envelope protocol %q", ErrRejected, env.Protocol)
	}
	cert, err := v.Verify(env.Cert, env.Registration, env.Signature, pki.RoleNode)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	var r protocol.Registration
	if err := json.Unmarshal(env.Registration, &r); err != nil {
		return nil, fmt.Errorf("%w: undecodable announcement from %q: %v", ErrRejected, cert.Subject.CommonName, err)
	}
	if r.Protocol != protocol.RegistrationProtocol {
		return nil, fmt.Errorf("%w: unknown announcement protocol %q from %q", ErrRejected, r.Protocol, cert.Subject.CommonName)
	}
	if r.Identity != cert.Subject.CommonName {
		return nil, fmt.Errorf("%w: announcement claims identity %q but is signed by %q", ErrRejected, r.Identity, cert.Subject.CommonName)
	}
	if err := ValidIdentity(r.Identity); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	return &r, nil
}

// validIdentity is what an identity may look like to become a file name
// (^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,252}$): DNS style names and the like,
// never a path separator, never starting with a dot (so neither "..", nor
// hidden files, nor our own temporary files). A loop rather than a
// package-level regexp: compiling that one, with its counted repetition,
// cost every mco process 230 KB and 3,300 allocations at start-up.
func validIdentity(s string) bool {
	if len(s) == 0 || len(s) > 253 || s[0] == '.' || s[0] == '-' || s[0] == '@' {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_', c == '.', c == '@', c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidIdentity reports whether identity is safe as a file name in the store.
func ValidIdentity(identity string) error {
	if !validIdentity(identity) {
		return fmt.Errorf("identity %q is not usable as a file name (letters, digits, '.', '_', '-', '@'; not starting with '.')", identity)
	}
	return nil
}
