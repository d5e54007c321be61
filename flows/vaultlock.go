package flows

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/latch-dev/latch/vault"
)

// VaultState is what latch vault status shows: the backend and why, and for
// the file vault its format and lock.
type VaultState struct {
	Backend string
	Reason  string
	// Lock is the file vault's state; nil for the keyring and memory.
	Lock *vault.LockState
	// Cache is where the session cache lives ("" when there is none).
	Cache string
}

// Locked reports whether the vault is a file vault that is locked: using it
// would need the passphrase.
func (s VaultState) Locked() bool { return s.Lock != nil && s.Lock.State == "locked" }

// VaultState describes the vault without unlocking it, reading a secret or
// re-arming the idle timer.
func (e *Env) VaultState(ctx context.Context) VaultState {
	st := VaultState{Backend: e.Vault.Backend, Reason: e.Vault.Reason}
	if e.Cache != nil {
		st.Cache = e.Cache.Where()
	}
	if l, ok := e.Secrets.(vault.Lockable); ok {
		ls := l.LockState(ctx)
		st.Lock = &ls
	}
	return st
}

// VaultExists reports whether the file vault exists yet (false for other
// backends); a new one is created with a passphrase typed twice.
func (e *Env) VaultExists() bool {
	l, ok := e.Secrets.(vault.Lockable)
	return ok && l.Exists()
}

// UnlockVault unwraps the file vault's key with passphrase and keeps it in
// the session cache for idle of non-use (0: 12 h). A new vault is created
// with that passphrase. Without a session cache the vault stays unlocked for
// this process only, and the error matches vault.ErrNoCache.
func (e *Env) UnlockVault(ctx context.Context, passphrase []byte, idle time.Duration) error {
	l, ok := e.Secrets.(vault.Lockable)
	if !ok {
		return fmt.Errorf("the %s vault has no passphrase to unlock: only the file vault does", e.Vault.Backend)
	}
	return l.Unlock(ctx, passphrase, idle)
}

// LockVault locks the file vault and removes this latch home's access tokens
// from the session cache: a locked vault hands out nothing. A rotated pair
// that the vault could not save yet stays in the cache — removing it would
// end that session — and its profile is returned, so the caller can say so
// (and keep an agent that holds it running).
func (e *Env) LockVault(ctx context.Context) (unsaved []string, err error) {
	var errs []error
	if l, ok := e.Secrets.(vault.Lockable); ok {
		errs = append(errs, l.Lock(ctx))
	}
	if e.Cache != nil {
		errs = append(errs, e.Cache.Clear(ctx, vault.CacheAccessTokens))
		cfg, cerr := e.Config()
		if cerr != nil {
			return nil, cerr
		}
		m := e.Tokens()
		for _, p := range cfg.Profiles {
			if m.pending(ctx, p.Name) != nil {
				unsaved = append(unsaved, p.Name)
			}
		}
	}
	return unsaved, errors.Join(errs...)
}

// ChangeVaultPassphrase rewraps the file vault's key.
func (e *Env) ChangeVaultPassphrase(ctx context.Context, old, new []byte) error {
	l, ok := e.Secrets.(vault.Lockable)
	if !ok {
		return fmt.Errorf("the %s vault has no passphrase: only the file vault does", e.Vault.Backend)
	}
	return l.ChangePassphrase(ctx, old, new)
}

// vaultReady makes sure the vault can take a new session before one is
// created on a server, so that a locked vault does not leave a session
// there that nothing here holds.
func (e *Env) vaultReady(ctx context.Context) error {
	if l, ok := e.Secrets.(vault.Lockable); ok {
		if err := l.Ready(ctx); err != nil {
			return fmt.Errorf("the vault cannot save a session, so none was started: %w", err)
		}
	}
	return nil
}
