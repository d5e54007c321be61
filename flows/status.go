package flows

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/latch-dev/latch/vault"
)

// Session states of a profile, as Status reports them.
const (
	StateLoggedIn  = "logged_in"  // tokens saved and the refresh token not known to be expired
	StateExpired   = "expired"    // tokens saved, but the refresh token's lifetime has passed
	StateRefused   = "refused"    // tokens saved, but the provider refused the refresh token
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
	case !ts.RefusedAt.IsZero():
		// The provider ended the session (revoked, reused, expired on
		// its side): the saved tokens are kept, but they are no login.
		return ProfileStatus{Profile: p, State: StateRefused, Tokens: &ts}
	case !ts.RefreshExpiresAt.IsZero() && !ts.RefreshExpiresAt.After(e.now()):
		return ProfileStatus{Profile: p, State: StateExpired, Tokens: &ts}
	default:
		return ProfileStatus{Profile: p, State: StateLoggedIn, Tokens: &ts}
	}
}

// refusal is the note recordRefusal keeps: which refresh token the
// provider refused (a fingerprint, not the token) and when.
type refusal struct {
	Refresh string `json:"rt"`
	At      int64  `json:"at"`
}

func refusedKey(profile string) string { return "profile/" + profile + "/refused" }

// fingerprint names a refresh token without revealing it.
func fingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:16])
}

// recordRefusal notes, beside profile's saved tokens, that the provider
// refused st's refresh token, so that Status no longer calls the profile
// logged in without calling the provider. The tokens are not touched: the
// refusal may concern a session the user wants to inspect or log out of.
// The note holds for that refresh token only, so a new login or a rotation
// ends it without having to clear it. Best effort: if it cannot be saved,
// the refusal still reaches the caller.
func (m *TokenManager) recordRefusal(ctx context.Context, profile string, st *storedTokens) {
	raw, err := json.Marshal(refusal{Refresh: fingerprint(st.Refresh), At: m.now().Unix()})
	if err == nil {
		m.Secrets.Set(ctx, refusedKey(profile), raw)
	}
	m.uncache(ctx, vault.CacheAccessToken(profile))
}

// refusedAt is when the provider refused st's refresh token; zero when it
// has not (or the note cannot be read, which status must not fail over).
func (m *TokenManager) refusedAt(ctx context.Context, profile string, st *storedTokens) time.Time {
	if st.Refresh == "" {
		return time.Time{}
	}
	raw, err := m.Secrets.Get(ctx, refusedKey(profile))
	if err != nil {
		return time.Time{}
	}
	var r refusal
	if json.Unmarshal(raw, &r) != nil || r.Refresh != fingerprint(st.Refresh) || r.At <= 0 {
		return time.Time{}
	}
	return time.Unix(r.At, 0)
}

// noSessionError is a profile with no saved tokens. It matches
// ErrLoginRequired and vault.ErrNotFound, but its message names neither:
// "login required: not found" told the user nothing they could act on.
type noSessionError struct{ profile string }

func (e *noSessionError) Error() string {
	return fmt.Sprintf("profile %q is not logged in (no saved session); log in with latch login --profile %s", e.profile, e.profile)
}

func (e *noSessionError) Is(target error) bool {
	return target == ErrLoginRequired || target == vault.ErrNotFound
}
