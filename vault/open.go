package vault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Modes accepted by Open.
const (
	ModeAuto    = "auto"
	ModeKeyring = "keyring"
	ModeFile    = "file"
	ModeMemory  = "memory"
)

// Choice reports which backend Open picked and why, so the CLI can tell the
// user (for example that the keyring was unusable).
type Choice struct {
	Backend string `json:"backend"` // "keyring", "file" or "memory"
	Reason  string `json:"reason"`
	// Retry marks a fallback to the file vault because the keyring did not
	// answer in time (rather than being absent): a later run may probe
	// again, as long as the file vault holds nothing yet.
	Retry bool `json:"retry,omitempty"`
}

// Options are what Open and Reopen need besides the mode and directory.
type Options struct {
	// Passphrase returns the file vault's passphrase when it is needed to
	// unlock (or create) the vault; an error wrapping ErrLocked means there
	// is no way to ask. nil means there is none.
	Passphrase func() ([]byte, error)
	// Cache keeps the file vault's unlocked identity between processes;
	// nil means each process unlocks on its own.
	Cache Cache
}

// newSystemKeyring builds the keyring Open uses; tests swap it for a fake.
var newSystemKeyring = func() keyringAPI { return systemKeyring{} }

// Open returns the secrets backend for mode:
//
//   - "auto" (or ""): the system keyring if a bounded probe (store, read back,
//     delete a throwaway entry) succeeds, else the encrypted file vault in dir,
//     with Choice.Reason saying why;
//   - "keyring": the system keyring, or an error if it does not work;
//   - "file": the age-encrypted file vault in dir; o.Passphrase is called
//     only when the vault must be unlocked and the cache does not have it;
//   - "memory": process memory only.
//
// It never chooses a plaintext store.
func Open(ctx context.Context, mode, dir string, o Options) (Secrets, Choice, error) {
	switch mode {
	case ModeMemory:
		return NewMemory(), Choice{Backend: ModeMemory, Reason: "in-memory vault requested: secrets last only as long as this process"}, nil
	case ModeFile:
		s, err := openFile(dir, o)
		if err != nil {
			return nil, Choice{}, err
		}
		return s, Choice{Backend: ModeFile, Reason: "encrypted file vault requested: " + filepath.Join(dir, vaultFile)}, nil
	case ModeKeyring:
		k := newKeyringSecrets(newSystemKeyring())
		k.service = KeyringService(dir)
		if err := k.probe(ctx); err != nil {
			return nil, Choice{}, fmt.Errorf("system keyring requested but unusable: %w", err)
		}
		return k, Choice{Backend: ModeKeyring, Reason: "system keyring requested"}, nil
	case ModeAuto, "":
		// Check the file vault's arguments first, so a misconfigured
		// fallback shows up even on machines where the keyring works.
		f, err := openFile(dir, o)
		if err != nil {
			return nil, Choice{}, err
		}
		k := newKeyringSecrets(newSystemKeyring())
		k.service = KeyringService(dir)
		perr := k.probe(ctx)
		if perr == nil {
			return k, Choice{Backend: ModeKeyring, Reason: "system keyring is available"}, nil
		}
		if ctx.Err() != nil {
			// The caller gave up; that says nothing about the keyring.
			return nil, Choice{}, ctx.Err()
		}
		return f, Choice{
			Backend: ModeFile,
			Reason:  fmt.Sprintf("keyring unavailable: %s; using encrypted file vault %s", why(perr), filepath.Join(dir, vaultFile)),
			Retry:   errors.Is(perr, ErrTimeout),
		}, nil
	default:
		return nil, Choice{}, fmt.Errorf("unknown vault mode %q: use %s, %s, %s or %s", mode, ModeAuto, ModeKeyring, ModeFile, ModeMemory)
	}
}

// Reopen returns the backend of an earlier Choice without probing it again
// (a probe writes to the keyring, which is too slow to repeat on every run).
// A keyring that stopped working shows up as a classified error on the first
// Get or Set, not as a switch to another store.
func Reopen(c Choice, dir string, o Options) (Secrets, error) {
	switch c.Backend {
	case ModeKeyring:
		k := newKeyringSecrets(newSystemKeyring())
		k.service = KeyringService(dir)
		return k, nil
	case ModeFile:
		return openFile(dir, o)
	default:
		return nil, fmt.Errorf("cannot reopen the %q vault: use %s or %s", c.Backend, ModeKeyring, ModeFile)
	}
}

func openFile(dir string, o Options) (*fileSecrets, error) {
	s, err := newFileSecrets(dir, o.Passphrase)
	if err != nil {
		return nil, err
	}
	s.cache = o.Cache
	return s, nil
}

// FileVaultExists reports whether dir holds a file vault (or its key).
func FileVaultExists(dir string) bool {
	for _, name := range []string{vaultFile, keyFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}

// KeyringService is the keyring service name of the latch home dir: "latch"
// for the default home, and "latch:" plus the directory for any other
// (LATCH_HOME), so that separate homes never share keyring entries.
func KeyringService(dir string) string {
	if base, err := os.UserConfigDir(); err == nil && filepath.Clean(dir) == filepath.Join(base, "latch") {
		return keyringService
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return keyringService + ":" + dir
}

// why says in a few words why the keyring probe failed.
func why(err error) string {
	switch {
	case errors.Is(err, ErrNoKeyring):
		return "no Secret Service on D-Bus (is gnome-keyring running?)"
	case errors.Is(err, ErrKeyringLocked):
		return "it is locked"
	case errors.Is(err, ErrTimeout):
		return fmt.Sprintf("it did not answer within %s", keyringTimeout)
	default:
		return err.Error()
	}
}
