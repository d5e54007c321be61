package flows

import (
	"context"
	"errors"

	"github.com/latch-dev/latch/vault"
)

// Session states of a profile, as Status reports them.
const (
	StateLoggedIn  = "logged_in"  // tokens saved and the refresh token not known to be expired
	StateExpired   = "expired"    // tokens saved, but the refresh token's lifetime has passed
	StateLoggedOut = "logged_out" // no tokens saved
	StateUnknown   = "unknown"    // the vault could not be read; Error says why
)

// ProfileStatus is what latch knows locally about one profile. It is built
// without calling the server and without refreshing anything.
type ProfileStatus struct {
	Profile vault.Profile
	Current bool
	State   string
	Tokens  *TokenState // nil unless tokens are saved and readable
	Error   error       // why the state is unknown
	// BackupCodesLeft counts the unused backup codes saved for the
	// profile; nil when none were saved.
	BackupCodesLeft *int
}

// Status describes every profile, current first.
func (e *Env) Status(ctx context.Context) ([]ProfileStatus, error) {
	cfg, err := e.Config()
	if err != nil {
		return nil, err
	}
	out := make([]ProfileStatus, 0, len(cfg.Profiles))
	for _, p := range cfg.Profiles {
		st := e.profileStatus(ctx, p)
		st.Current = p.Name == cfg.Current
		if st.Current {
			out = append([]ProfileStatus{st}, out...)
		} else {
			out = append(out, st)
		}
	}
	return out, nil
}

// ProfileStatus describes one profile ("" = current).
func (e *Env) ProfileStatus(ctx context.Context, name string) (ProfileStatus, error) {
	cfg, err := e.Config()
	if err != nil {
		return ProfileStatus{}, err
	}
	p, err := pickProfile(cfg, name)
	if err != nil {
		return ProfileStatus{}, err
	}
	st := e.profileStatus(ctx, p)
	st.Current = p.Name == cfg.Current
	return st, nil
}

func (e *Env) profileStatus(ctx context.Context, p vault.Profile) ProfileStatus {
	st := e.sessionStatus(ctx, p)
	if b, err := e.loadCodes(ctx, backupKey(p.Name)); err == nil {
		n := b.Remaining()
		st.BackupCodesLeft = &n
	}
	return st
}

func (e *Env) sessionStatus(ctx context.Context, p vault.Profile) ProfileStatus {
	ts, err := e.Tokens().Status(ctx, p.Name)
	switch {
	case errors.Is(err, vault.ErrNotFound):
		return ProfileStatus{Profile: p, State: StateLoggedOut}
	case err != nil:
		return ProfileStatus{Profile: p, State: StateUnknown, Error: err}
	case !ts.RefreshExpiresAt.IsZero() && !ts.RefreshExpiresAt.After(e.now()):
		return ProfileStatus{Profile: p, State: StateExpired, Tokens: &ts}
	default:
		return ProfileStatus{Profile: p, State: StateLoggedIn, Tokens: &ts}
	}
}
