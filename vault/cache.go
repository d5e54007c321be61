package vault

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	// Clear removes every entry of this scope whose name starts with
	// prefix ("" for all): latch vault lock removes "at/", the access
	// tokens, and leaves unsaved rotations.
	Clear(ctx context.Context, prefix string) error
	// Where says in a few words where the entries live, for latch vault
	// status ("kernel keyring (persistent keyring of uid 1000)").
	Where() string
}

// ErrNoCache means no session cache can be had here: the kernel refuses
// keyctl (a seccomp profile, a kernel without keys) and no latch agent is
// running. Callers then unlock the vault once per process instead.
var ErrNoCache = errors.New("no session cache: the kernel keyring is not available here and no latch agent is running; " +
	"start one with latch vault unlock")

// CacheScope names the cache scope of a latch home: a random id kept in the
// home (cache-id, 0600), made on first use. The kernel keyring is per uid and
// not per container, so two containers running as the same uid with the same
// LATCH_HOME path must not share entries — a hash of the path would let one
// hand out the other's access tokens. The same home on a shared volume is
// the same vault, and shares them rightly. A home where the id cannot be
// kept falls back to a hash of its path.
func CacheScope(home string) string {
	if id, err := homeID(home); err == nil {
		return id
	}
	if abs, err := filepath.Abs(home); err == nil {
		home = abs
	}
	sum := sha256.Sum256([]byte(filepath.Clean(home)))
	return hex.EncodeToString(sum[:6])
}

const cacheIDFile = "cache-id"

// homeID reads home's cache id, or makes one: written to a temp file and
// linked into place, so that latch processes starting together agree on it
// and none reads a half-written id.
func homeID(home string) (string, error) {
	path := filepath.Join(home, cacheIDFile)
	for range 2 {
		if b, err := os.ReadFile(path); err == nil {
			if id := strings.TrimSpace(string(b)); validID(id) {
				return id, nil
			}
			return "", fmt.Errorf("%s is not a latch cache id", path)
		}
		b := make([]byte, 12)
		rand.Read(b)
		tmp, err := os.CreateTemp(home, "."+cacheIDFile+".*.tmp")
		if err != nil {
			return "", err
		}
		_, werr := tmp.WriteString(hex.EncodeToString(b) + "\n")
		cerr := tmp.Close()
		if werr == nil && cerr == nil {
			// Link fails if another latch made the id first: then read
			// theirs on the next turn.
			os.Link(tmp.Name(), path)
		}
		os.Remove(tmp.Name())
	}
	return "", fmt.Errorf("could not make %s", path)
}

func validID(id string) bool {
	if len(id) != 24 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// Names of the entries latch keeps in the cache.
const (
	// CacheIdentity holds the file vault's unlocked age identity.
	CacheIdentity = "vault/identity"
	// cacheUsed holds when the identity was last used (Unix seconds):
	// nothing secret, so a latch vault lock racing a use that brings it
	// back is harmless.
	cacheUsed = "vault/used"
)

// CacheAccessTokens is the prefix of every entry holding an access token.
const CacheAccessTokens = "at/"

// CacheAccessToken names the entry holding profile's current access token.
func CacheAccessToken(profile string) string { return CacheAccessTokens + profile }

// CachePending names the entry holding a rotated token pair of profile that
// could not be saved to the vault yet.
func CachePending(profile string) string { return "pending/" + profile }

// DefaultIdle is how long an unlocked vault stays unlocked without use.
const DefaultIdle = 12 * time.Hour

// maxIdle bounds the idle timeout an unlock may ask for (and a cache entry
// may claim): a year.
const maxIdle = 365 * 24 * time.Hour
