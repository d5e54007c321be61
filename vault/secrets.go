// Package vault owns latch's local state: the profiles file (server, user name,
// issuer — nothing secret) and the storage of secrets (refresh tokens and the
// like) behind one small Secrets interface, backed by the system keyring, an
// age-encrypted file, or memory.
//
// It must never write a secret in plaintext, and never fall back silently to a
// weaker store: when the keyring cannot be used, Open says so in its Choice,
// and an explicitly requested backend that does not work is an error.
package vault

import (
	"context"
	"errors"
	"fmt"
	"unicode"
)

// Secrets stores small secret values by key.
type Secrets interface {
	// Get returns the value stored under key, or an error wrapping ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value under key, replacing any previous value.
	Set(ctx context.Context, key string, value []byte) error
	// Delete removes key; deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
}

// Errors callers act on. Compare with errors.Is: backends wrap them with the
// underlying cause.
var (
	ErrNotFound = errors.New("not found")

	ErrNoKeyring = errors.New("no system keyring: no Secret Service on D-Bus " +
		"(is gnome-keyring or KeePassXC running?); start one, or set LATCH_VAULT=file to use the encrypted file vault")

	ErrKeyringLocked = errors.New("the system keyring is locked: unlock it (log in to the desktop session, " +
		"or run gnome-keyring-daemon --unlock), or set LATCH_VAULT=file to use the encrypted file vault")

	ErrTimeout = errors.New("timed out: the secret store did not answer in time " +
		"(a keyring waiting on a prompt, or another latch holding the vault lock); try again, " +
		"or set LATCH_VAULT=file to use the encrypted file vault")

	ErrTooBig = errors.New("secret too big for this store: the keyring keeps entries small; " +
		"set LATCH_VAULT=file to use the encrypted file vault")

	ErrWrongPassphrase = errors.New("wrong vault passphrase: the vault was left unchanged; " +
		"check LATCH_VAULT_PASSPHRASE or type it again")

	// ErrLocked means the file vault is locked and nothing can unlock it
	// here: no cached identity, no LATCH_VAULT_IDENTITY, no passphrase in
	// the environment and no terminal to ask on. It is not a logged-out
	// session (exit code 5, not 4).
	ErrLocked = errors.New("the vault is locked: unlock it with latch vault unlock, " +
		"or set LATCH_VAULT_PASSPHRASE (or LATCH_VAULT_IDENTITY / LATCH_VAULT_IDENTITY_FILE, an age identity)")

	ErrCorrupt = errors.New("the vault is corrupt or truncated and was left unchanged: " +
		"restore it from a backup, or move it aside and log in again")
)

// maxKeyLen keeps keys comfortably inside every keyring's attribute limits.
const maxKeyLen = 200

// validateKey rejects keys that could collide with the keyring's chunk keys
// ("key#1") or that a terminal would render misleadingly.
func validateKey(key string) error {
	switch {
	case key == "":
		return errors.New("invalid secret key: empty")
	case len(key) > maxKeyLen:
		return fmt.Errorf("invalid secret key %.20q…: longer than %d bytes", key, maxKeyLen)
	}
	for _, r := range key {
		if r == '#' {
			return fmt.Errorf("invalid secret key %q: '#' is reserved", key)
		}
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return fmt.Errorf("invalid secret key %q: control or invalid character", key)
		}
	}
	return nil
}
