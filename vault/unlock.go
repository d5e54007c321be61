package vault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"
)

// Environment variables that hand the file vault its identity directly, for
// CI secret stores and other places where nobody types a passphrase.
const (
	IdentityEnv     = "LATCH_VAULT_IDENTITY"
	IdentityFileEnv = "LATCH_VAULT_IDENTITY_FILE"
)

// Where an unlocked identity came from.
const (
	sourceEnv        = IdentityEnv
	sourceEnvFile    = IdentityFileEnv
	sourceCache      = "the session cache"
	sourcePassphrase = "the passphrase"
)

// maxKeyFile bounds the key file and an identity file: each holds one key.
const maxKeyFile = 64 << 10

// rearmAfter is how stale an identity's last use in the cache may get before
// a use writes the cache again to re-arm its idle timer; below it a use only
// reads, so a burst of latch token costs no writes.
const rearmAfter = time.Minute

// LockState describes a file vault without unlocking it.
type LockState struct {
	// Format is 1 or 2, or 0 when there is no vault file yet.
	Format int
	// State is "unlocked" when a latch started now would find the identity
	// without asking (environment or session cache), else "locked".
	State string
	// From says where the identity comes from when unlocked.
	From string
	// Cache says where the session cache lives ("" when there is none).
	Cache string
	// Until is when an unused unlocked vault locks itself (zero: never, or
	// locked).
	Until time.Time
	// Idle is the idle timeout the vault was unlocked with.
	Idle time.Duration
}

// Lockable is the file vault's lock, as latch vault unlock/lock/status/passwd
// and the interface's unlock screen use it.
type Lockable interface {
	Secrets
	// Unlock unwraps the vault's identity with passphrase (creating the
	// vault when there is none, migrating a format-1 vault) and keeps it in
	// the session cache for idle of non-use (0: DefaultIdle).
	Unlock(ctx context.Context, passphrase []byte, idle time.Duration) error
	// Lock forgets the identity in this process and in the session cache.
	Lock(ctx context.Context) error
	// LockState reports the vault's state without unlocking it or
	// re-arming its idle timer.
	LockState(ctx context.Context) LockState
	// ChangePassphrase rewraps the identity with a new passphrase; the
	// secrets themselves are not rewritten.
	ChangePassphrase(ctx context.Context, old, new []byte) error
	// Exists reports whether there is a vault file or key file yet.
	Exists() bool
	// Ready makes sure the vault can be read and written now: it unlocks
	// it (asking for the passphrase if it must) and, for a new vault,
	// makes its key. Callers use it before an action that would be lost if
	// the vault then refused it, such as creating a session on a server.
	Ready(ctx context.Context) error
}

var _ Lockable = (*fileSecrets)(nil)

// identity returns the vault's identity: remembered in this process, else
// from the environment, else from the session cache, else unwrapped from the
// key file with the passphrase (then put in the cache). With create, a
// missing key file means a new vault: a new identity is made and wrapped.
func (s *fileSecrets) identity(ctx context.Context, create bool) (*age.X25519Identity, error) {
	s.mu.Lock()
	id := s.id
	s.mu.Unlock()
	if id != nil {
		return id, nil
	}
	id, src, err := envIdentity()
	if err != nil {
		return nil, err
	}
	if id != nil {
		s.setIdentity(ctx, id, src, false)
		return id, nil
	}
	// A new vault gets a new key, whatever the cache holds: an identity
	// left there by a vault that was moved aside would otherwise encrypt
	// the new one with no key file to unwrap it once the cache forgets it.
	fresh := create && !s.keyExists()
	if !fresh {
		if id := s.cachedIdentity(ctx, true); id != nil {
			return id, nil
		}
	}
	// One latch at a time unwraps the key, so that many started together on
	// a locked vault derive it once (the others find it in the cache), not
	// each at a second of CPU and 256 MB.
	unlock, err := lockAt(ctx, filepath.Join(s.dir, keyFile+".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !fresh {
		if id := s.cachedIdentity(ctx, true); id != nil {
			return id, nil
		}
	}
	if !s.keyExists() {
		if !create {
			if _, err := os.Stat(s.path); err == nil {
				// Not ErrLocked: no passphrase can open this vault.
				return nil, fmt.Errorf("file vault %s cannot be opened: its key file %s is missing (or the vault was "+
					"made with %s): restore the key file from a backup, or set %s to the vault's identity",
					s.path, filepath.Join(s.dir, keyFile), IdentityEnv, IdentityEnv)
			}
		}
		pass, err := s.askPassphrase()
		if err != nil {
			return nil, err
		}
		id, err := s.newKey(ctx, pass)
		if err != nil {
			return nil, err
		}
		s.setIdentity(ctx, id, sourcePassphrase, true)
		return id, nil
	}
	pass, err := s.askPassphrase()
	if err != nil {
		return nil, err
	}
	id, err = unwrapKeyFile(s.dir, pass)
	if err != nil {
		s.setPass(nil)
		return nil, err
	}
	s.setPass(pass)
	s.setIdentity(ctx, id, sourcePassphrase, true)
	return id, nil
}

// askPassphrase returns the passphrase that already worked in this process,
// else asks the caller's function.
func (s *fileSecrets) askPassphrase() ([]byte, error) {
	s.mu.Lock()
	p := s.pass
	s.mu.Unlock()
	if p != nil {
		return p, nil
	}
	p, err := s.passphrase()
	if errors.Is(err, ErrLocked) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("vault passphrase: %w", err)
	}
	if len(p) == 0 {
		return nil, errors.New("vault passphrase is empty: set LATCH_VAULT_PASSPHRASE or type one at the prompt")
	}
	return p, nil
}

func (s *fileSecrets) setPass(p []byte) {
	s.mu.Lock()
	s.pass = p
	s.mu.Unlock()
}

// Unlock implements Lockable.
func (s *fileSecrets) Unlock(ctx context.Context, passphrase []byte, idle time.Duration) error {
	if len(passphrase) == 0 {
		return errors.New("vault passphrase is empty")
	}
	if idle > maxIdle {
		return fmt.Errorf("an idle timeout of %s is longer than a year", idle)
	}
	if idle > 0 {
		s.idle = idle
	}
	s.dropIdentity(ctx)
	s.setPass(passphrase)
	data, _, err := s.readFile(ctx)
	switch {
	case errors.Is(err, ErrNotFound) && !s.keyExists():
		// A new vault: make its key now, so the next write needs nothing.
		if _, err := s.identity(ctx, true); err != nil {
			return err
		}
		if s.cache == nil {
			return ErrNoCache
		}
		return nil
	case err != nil && !errors.Is(err, ErrNotFound):
		return err
	case err == nil && vaultFormat(data) == Format1:
		// Migrating puts the identity in the cache.
		if err := s.update(ctx, func(map[string][]byte) bool { return false }); err != nil {
			return err
		}
		if s.cache == nil {
			return ErrNoCache
		}
		return nil
	}
	unlock, err := lockAt(ctx, filepath.Join(s.dir, keyFile+".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	id, err := unwrapKeyFile(s.dir, passphrase)
	if err != nil {
		s.setPass(nil)
		return err
	}
	if data != nil {
		if _, err := decryptMap(data, id); err != nil {
			return fmt.Errorf("file vault %s does not open with its key file's identity (%v): %w", s.path, err, ErrCorrupt)
		}
	}
	if s.cache == nil {
		s.setIdentity(ctx, id, sourcePassphrase, false)
		return ErrNoCache
	}
	if err := s.setIdentity(ctx, id, sourcePassphrase, true); err != nil {
		return fmt.Errorf("keep the unlocked vault in %s: %w", s.cache.Where(), err)
	}
	return nil
}

// Lock implements Lockable.
func (s *fileSecrets) Lock(ctx context.Context) error {
	s.mu.Lock()
	s.id, s.from, s.pass, s.memo, s.memoData = nil, "", nil, nil, nil
	s.mu.Unlock()
	if s.cache == nil {
		return nil
	}
	return errors.Join(s.cache.Delete(ctx, CacheIdentity), s.cache.Delete(ctx, cacheUsed))
}

// LockState implements Lockable. It neither unlocks nor re-arms anything.
func (s *fileSecrets) LockState(ctx context.Context) LockState {
	st := LockState{State: "locked"}
	if s.cache != nil {
		st.Cache = s.cache.Where()
	}
	if data, _, err := s.readFile(ctx); err == nil {
		st.Format = vaultFormat(data)
	}
	if id, src, err := envIdentity(); err == nil && id != nil {
		st.State, st.From = "unlocked", src
		return st
	}
	if e, ok := s.readCachedIdentity(ctx); ok {
		st.State, st.From, st.Idle = "unlocked", sourceCache, e.idle
		st.Until = e.used.Add(e.idle)
	}
	return st
}

// ChangePassphrase implements Lockable.
func (s *fileSecrets) ChangePassphrase(ctx context.Context, old, new []byte) error {
	if len(new) == 0 {
		return errors.New("the new vault passphrase is empty")
	}
	if data, _, err := s.readFile(ctx); err == nil && vaultFormat(data) == Format1 {
		s.setPass(old)
		if err := s.update(ctx, func(map[string][]byte) bool { return false }); err != nil {
			return err
		}
	}
	unlock, err := lockAt(ctx, filepath.Join(s.dir, keyFile+".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if !s.keyExists() {
		return fmt.Errorf("file vault %s has no passphrase to change: it is new, or was made with %s", s.dir, IdentityEnv)
	}
	id, err := unwrapKeyFile(s.dir, old)
	if err != nil {
		return err
	}
	if err := writeKeyFile(s.dir, id, new, s.wrap); err != nil {
		return err
	}
	s.setPass(new)
	return nil
}

// Ready implements Lockable.
func (s *fileSecrets) Ready(ctx context.Context) error {
	if _, _, err := s.readFile(ctx); errors.Is(err, ErrNotFound) {
		_, err := s.identity(ctx, true)
		return err
	}
	_, err := s.read(ctx)
	return err
}

// Exists implements Lockable.
func (s *fileSecrets) Exists() bool {
	if _, err := os.Stat(s.path); err == nil {
		return true
	}
	return s.keyExists()
}
