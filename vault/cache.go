package vault

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"time"
)

// Cache keeps a few small secrets for a bounded time in memory that the
// operating system protects and that outlives one latch process: the
// unlocked identity of the file vault, and each profile's current access
// token. Every entry has a timeout; the kernel's persistent keyring itself is
// dropped a few days after its last use, an agent when it ends. It is never the source of truth — the vault is — so a
// missing or unreadable entry is simply a miss.
//
// Names are short ASCII strings chosen by latch ("vault/identity",
// "at/work"); an implementation scopes them to one latch home (see
// CacheScope), so two homes never see each other's entries.
type Cache interface {
	// Get returns the value stored under name, or an error wrapping
	// ErrNotFound when there is none (never stored, expired or deleted).
	// Get does not extend the entry's life.
	Get(ctx context.Context, name string) ([]byte, error)
	// Put stores value under name for ttl, replacing any entry of that name
	// and its timeout. ttl must be positive.
	Put(ctx context.Context, name string, value []byte, ttl time.Duration) error
	// Touch gives the entry under name a new timeout of ttl from now (the
	// idle timer, re-armed by real use). An absent entry wraps ErrNotFound.
	Touch(ctx context.Context, name string, ttl time.Duration) error
	// Delete removes the entry under name; deleting an absent one is not an
	// error.
	Delete(ctx context.Context, name string) error
	// Clear removes every entry of this scope (latch vault lock).
	Clear(ctx context.Context) error
	// Where says in a few words where the entries live, for latch vault
	// status ("kernel keyring (persistent keyring of uid 1000)").
	Where() string
}

// ErrNoCache means no session cache can be had here: the kernel refuses
// keyctl (a seccomp profile, a kernel without keys) and no latch agent is
// running. Callers then unlock the vault once per process instead.
var ErrNoCache = errors.New("no session cache: the kernel keyring is not available here and no latch agent is running; " +
	"start one with latch vault unlock")

// CacheScope names the cache scope of a latch home: a short hash of its
// absolute path, so that entries of different homes (LATCH_HOME) never mix
// and no path appears in /proc/keys.
func CacheScope(home string) string {
	if abs, err := filepath.Abs(home); err == nil {
		home = abs
	}
	sum := sha256.Sum256([]byte(filepath.Clean(home)))
	return hex.EncodeToString(sum[:6])
}

// Names of the entries latch keeps in the cache.
const (
	// CacheIdentity holds the file vault's unlocked age identity.
	CacheIdentity = "vault/identity"
)

// CacheAccessToken names the entry holding profile's current access token.
func CacheAccessToken(profile string) string { return "at/" + profile }

// CachePending names the entry holding a rotated token pair of profile that
// could not be saved to the vault yet.
func CachePending(profile string) string { return "pending/" + profile }

// DefaultIdle is how long an unlocked vault stays unlocked without use.
const DefaultIdle = 12 * time.Hour
