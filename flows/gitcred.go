package flows

import (
	"context"
	"fmt"

	"github.com/latch-dev/latch/vault"
)

// DropAccessToken stops handing out profile's current access token, so that
// the next TokenFor (or Token) rotates and hands out a fresh one. It is what
// a credential helper's "erase" does when a tool (git) says the server
// refused the token: it does not log out, and it keeps the refresh token.
//
// token, when not empty, is the access token the tool was refused: if the
// profile's current token is another one, some latch rotated meanwhile and
// nothing is dropped, so a burst of erases costs one rotation, not one each.
// It reports whether it dropped anything.
func (e *Env) DropAccessToken(ctx context.Context, profile, token string) (bool, error) {
	p, err := e.Profile(profile)
	if err != nil {
		return false, err
	}
	return e.Tokens().drop(ctx, p.Name, token)
}

// drop marks the saved access token as spent, under the profile's lock: its
// expiry becomes its issue time, so that neither the vault nor the session
// cache offers it again while the refresh token stays as it was.
func (m *TokenManager) drop(ctx context.Context, profile, token string) (bool, error) {
	if err := m.check(profile); err != nil {
		return false, err
	}
	m.savePending(ctx, profile)
	unlock, err := m.lock(ctx, profile)
	if err != nil {
		return false, err
	}
	defer unlock()
	st, err := m.load(ctx, profile)
	if err != nil {
		return false, err
	}
	if token != "" && st.Access != token {
		return false, nil
	}
	m.uncache(ctx, vault.CacheAccessToken(profile))
	if st.AccessExp <= st.Issued {
		return false, nil // dropped already
	}
	st.AccessExp = st.Issued
	if err := m.store(ctx, profile, st); err != nil {
		return false, fmt.Errorf("profile %q: withdraw the access token (the saved tokens are unchanged): %w", profile, err)
	}
	// st is now what the vault holds: an unsaved pair it came from is
	// saved with it.
	m.uncache(ctx, vault.CachePending(profile))
	return true, nil
}
