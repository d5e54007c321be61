// Package agent is the latch agent: a small per-user process that holds the
// vault's session cache (the unlocked identity, access tokens) where the
// kernel keyring is refused, typically a container under Docker's default
// seccomp profile. It owns the protocol spoken over its unix socket, the
// server (Serve), the client that implements vault.Cache (Dial) and the
// detached start of the process (Start).
//
// The agent holds values in memory only and answers nobody but its own uid.
// It must never write a value to disk, to a log or into an error message,
// never answer a peer of another uid, and never extend an entry's life on a
// read or a status probe: only put and touch do.
//
// With ForwardOptions it also serves a forwarding socket for ssh -R (see
// forward.go): access tokens of the profiles allowed by name, and nothing
// else. The cache socket must never be forwarded: SO_PEERCRED sees a
// forwarded caller as the user's own ssh client, so only a separate socket
// that cannot hand out cache entries keeps the vault key at home.
package agent

import (
	"errors"
	"fmt"
	"time"
)

// ProtocolVersion is the version of the agent protocol this latch speaks.
// Every request and response carries it as "v".
const ProtocolVersion = 1

// DefaultIdle is how long an agent that holds no entries stays up.
const DefaultIdle = time.Minute

// VersionError means the agent answering on the socket speaks another
// protocol version than this latch: a latch upgraded while an older agent
// still runs (or the reverse).
type VersionError struct {
	Agent, Client int
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("the running latch agent speaks protocol %d, this latch speaks %d: "+
		"run latch vault lock to stop it, then unlock again", e.Agent, e.Client)
}

// validScope accepts the short hashes vault.CacheScope makes (and any other
// short alphanumeric scope).
func validScope(s string) error {
	if s == "" || len(s) > 64 {
		return errors.New("cache scope must be 1 to 64 characters")
	}
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
			return errors.New("cache scope must be alphanumeric")
		}
	}
	return nil
}

// validName accepts the short printable ASCII names latch chooses
// ("vault/identity", "at/work").
func validName(n string) error {
	if n == "" || len(n) > 256 {
		return errors.New("cache entry name must be 1 to 256 characters")
	}
	for i := 0; i < len(n); i++ {
		if n[i] <= ' ' || n[i] > '~' {
			return fmt.Errorf("cache entry name %q must be printable ASCII without spaces", n)
		}
	}
	return nil
}
