package flows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/vault"
)

// ErrLoginRequired means the saved session can no longer be refreshed: the
// user must log in again (exit code 4). The error that matches it says why.
var ErrLoginRequired = errors.New("login required")

const (
	// maxSkew is how long before its expiry an access token stops being
	// handed out, so that it does not expire in flight.
	maxSkew = 60 * time.Second
	// defaultLockWait bounds the wait for another latch that is refreshing
	// the same profile.
	defaultLockWait = 10 * time.Second
)

// Refresher trades a refresh token for a new token pair; *client.Client
// satisfies it.
type Refresher interface {
	Refresh(ctx context.Context, refreshToken string) (*client.Tokens, error)
}

// TokenManager is the one place that hands out a valid access token for a
// profile. It keeps each profile's tokens as one small secret, refreshes them
// under a per-profile lock shared by every latch process, and saves a rotated
// refresh token before the new access token is used.
//
// The zero value is not usable: Secrets and Dir are required. A TokenManager
// holds no state of its own, so any number of values (in any number of
// processes) may share one vault and Dir.
type TokenManager struct {
	Secrets vault.Secrets
	// Dir holds the lock files, in Dir/locks/<profile>.lock.
	Dir string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// LockWait bounds the wait for another latch refreshing the same profile;
	// zero means 10 s.
	LockWait time.Duration
	// Cache, when set, keeps each profile's current access token until
	// shortly before it expires, so that a valid token is handed out
	// without reading the vault; and it holds a rotated pair the vault
	// could not save (a full disk) until a later run saves it.
	Cache vault.Cache
	// Warn, when set, is told of trouble that did not stop the token from
	// being handed out (the vault could not save a rotation).
	Warn func(msg string)
}

// TokenState describes a profile's saved tokens without revealing them.
type TokenState struct {
	AccessExpiresAt  time.Time
	RefreshExpiresAt time.Time // zero when the server did not say
	IssuedAt         time.Time // when the current pair arrived
	LoggedInAt       time.Time // when the session started on this machine
	Rotations        int       // refreshes since LoggedInAt
	// RotateAt is when AccessToken will next refresh: shortly before the
	// access token expires, or once three quarters of the refresh token's
	// idle lifetime are spent, whichever comes first.
	RotateAt time.Time
	// RefusedAt is when the provider refused the session's refresh token;
	// zero unless it did since the tokens were saved.
	RefusedAt time.Time
}

// storedTokens is the secret saved per profile. It stays small, with short
// keys and Unix seconds, because keyring entries are limited to a few KB.
type storedTokens struct {
	Access     string `json:"at"`
	AccessExp  int64  `json:"at_exp"`
	Refresh    string `json:"rt"`
	RefreshExp int64  `json:"rt_exp,omitempty"` // 0: unknown
	Issued     int64  `json:"iat"`
	LoggedIn   int64  `json:"login"`
	Rotations  int    `json:"n"`
	// ID is an OpenID provider's ID token, kept for the inspector; "" for
	// account profiles, and when it was larger than maxIDToken.
	ID string `json:"id,omitempty"`
}

// maxIDToken keeps an unusually large ID token out of the vault, so that a
// profile's entry stays a few KB; the ID token is only ever displayed.
const maxIDToken = 8 << 10

func tokensKey(profile string) string { return "profile/" + profile + "/tokens" }

// skew is how early the access token is treated as expired: a minute, or a
// tenth of its lifetime when that is shorter.
func (s *storedTokens) skew() time.Duration {
	return min(maxSkew, time.Duration(s.AccessExp-s.Issued)*time.Second/10)
}

func (s *storedTokens) accessValid(now time.Time) bool {
	return time.Unix(s.AccessExp, 0).After(now.Add(s.skew()))
}

// rotateDueAt is when more than three quarters of the refresh token's idle
// lifetime are spent; zero when its lifetime is unknown.
func (s *storedTokens) rotateDueAt() time.Time {
	if s.RefreshExp <= s.Issued {
		return time.Time{}
	}
	life := time.Duration(s.RefreshExp-s.Issued) * time.Second
	return time.Unix(s.Issued, 0).Add(life * 3 / 4)
}

func (s *storedTokens) rotationDue(now time.Time) bool {
	due := s.rotateDueAt()
	return !due.IsZero() && now.After(due)
}

// usable reports whether the saved access token can be handed out as is.
func (s *storedTokens) usable(now time.Time) bool {
	return s.accessValid(now) && !s.rotationDue(now)
}

// newStored builds what is saved for a token pair that arrived at now.
func newStored(t *client.Tokens, now time.Time) (*storedTokens, error) {
	// An OpenID provider may issue no refresh token (no offline_access):
	// the session then ends with its access token.
	if t == nil || t.AccessToken == "" || t.ExpiresIn <= 0 {
		return nil, fmt.Errorf("%w: the token response lacks an access token or an expiry",
			client.ErrBadResponse)
	}
	s := &storedTokens{
		Access:    t.AccessToken,
		AccessExp: now.Add(t.ExpiresIn).Unix(),
		Refresh:   t.RefreshToken,
		Issued:    now.Unix(),
		LoggedIn:  now.Unix(),
	}
	if len(t.IDToken) <= maxIDToken {
		s.ID = t.IDToken
	}
	if t.RefreshExpiresIn > 0 {
		s.RefreshExp = now.Add(t.RefreshExpiresIn).Unix()
	}
	return s, nil
}

// Save stores the tokens of a fresh login for profile, replacing any saved
// session. It waits for a refresh of the same profile in progress, so that
// the refresh cannot overwrite the new login.
func (m *TokenManager) Save(ctx context.Context, profile string, t *client.Tokens) error {
	if err := m.check(profile); err != nil {
		return err
	}
	st, err := newStored(t, m.now())
	if err != nil {
		return fmt.Errorf("save tokens of profile %q: %w", profile, err)
	}
	unlock, err := m.lock(ctx, profile)
	if err != nil {
		return err
	}
	defer unlock()
	if err := m.store(ctx, profile, st); err != nil {
		return fmt.Errorf("save tokens of profile %q: %w", profile, err)
	}
	m.uncache(ctx, vault.CachePending(profile))
	m.cacheAccess(ctx, profile, st)
	return nil
}

// Status describes profile's saved tokens. It neither refreshes nor locks.
// A profile with no saved tokens is an error matching ErrLoginRequired and
// vault.ErrNotFound.
func (m *TokenManager) Status(ctx context.Context, profile string) (TokenState, error) {
	if err := m.check(profile); err != nil {
		return TokenState{}, err
	}
	st, err := m.load(ctx, profile)
	if err != nil {
		return TokenState{}, err
	}
	ts := TokenState{
		AccessExpiresAt: time.Unix(st.AccessExp, 0),
		IssuedAt:        time.Unix(st.Issued, 0),
		LoggedInAt:      time.Unix(st.LoggedIn, 0),
		Rotations:       st.Rotations,
		RotateAt:        time.Unix(st.AccessExp, 0).Add(-st.skew()),
	}
	if st.RefreshExp != 0 {
		ts.RefreshExpiresAt = time.Unix(st.RefreshExp, 0)
	}
	ts.RefusedAt = m.refusedAt(ctx, profile, st)
	if due := st.rotateDueAt(); !due.IsZero() && due.Before(ts.RotateAt) {
		ts.RotateAt = due
	}
	return ts, nil
}

// AccessToken returns a valid access token for profile, refreshing it with r
// when it is about to expire or when the session's refresh token has spent
// three quarters of its idle lifetime.
//
// A token that is still valid is returned without locking or calling the
// server. Otherwise the refresh runs under the profile's lock, after reading
// the vault again in case another latch refreshed meanwhile, and the rotated
// tokens are saved before the new access token is returned. When the server
// refuses the refresh token the error matches ErrLoginRequired; the saved
// tokens are never deleted here, whatever fails.
func (m *TokenManager) AccessToken(ctx context.Context, profile string, r Refresher) (string, error) {
	st, err := m.valid(ctx, profile, r, 0)
	if err != nil {
		return "", err
	}
	return st.Access, nil
}

// valid is the work of AccessToken and ValidToken: the cache when it holds a
// token good for minValid, else the vault, else a rotation.
func (m *TokenManager) valid(ctx context.Context, profile string, r Refresher, minValid time.Duration) (*storedTokens, error) {
	if err := m.check(profile); err != nil {
		return nil, err
	}
	if st, ok := m.cachedAccess(ctx, profile, minValid); ok {
		return st, nil
	}
	m.savePending(ctx, profile)
	locked := false
	if m.Cache != nil {
		// With a cache, a miss mostly means the token is due: take the
		// lock before reading, so the vault is read once rather than once
		// before the lock and again under it. A busy lock falls back to
		// reading without it, where a still-valid token is handed out.
		if unlock, err := m.lock(ctx, profile); err == nil {
			defer unlock()
			locked = true
		}
	}
	st, err := m.load(ctx, profile)
	if err != nil {
		return nil, err
	}
	if st.usableFor(m.now(), minValid) {
		m.cacheAccess(ctx, profile, st)
		return st, nil
	}
	if locked {
		return m.rotateLocked(ctx, profile, r, st, "", minValid)
	}
	return m.refresh(ctx, profile, r, st, "", minValid)
}

// Rotate refreshes profile's tokens now, even if the access token is still
// valid, unless the saved access token is no longer stale: then another latch
// has rotated meanwhile and its token is returned. Callers pass the access
// token the server refused (or the one on screen for "refresh now").
func (m *TokenManager) Rotate(ctx context.Context, profile string, r Refresher, stale string) (string, error) {
	if err := m.check(profile); err != nil {
		return "", err
	}
	m.savePending(ctx, profile)
	st, err := m.load(ctx, profile)
	if err != nil {
		return "", err
	}
	if stale == "" {
		stale = st.Access
	}
	// The refused token must not come back from the cache either.
	m.uncache(ctx, vault.CacheAccessToken(profile))
	next, err := m.refresh(ctx, profile, r, st, stale, 0)
	if err != nil {
		return "", err
	}
	return next.Access, nil
}

// Forget deletes profile's saved tokens, waiting for a refresh in progress.
func (m *TokenManager) Forget(ctx context.Context, profile string) error {
	if err := m.check(profile); err != nil {
		return err
	}
	unlock, err := m.lock(ctx, profile)
	if err != nil {
		return err
	}
	defer unlock()
	m.uncache(ctx, vault.CacheAccessToken(profile))
	m.uncache(ctx, vault.CachePending(profile))
	if err := m.Secrets.Delete(ctx, tokensKey(profile)); err != nil {
		return fmt.Errorf("delete tokens of profile %q: %w", profile, err)
	}
	m.Secrets.Delete(ctx, refusedKey(profile)) // best effort: a stale note is inert
	return nil
}

// RefreshToken returns profile's saved refresh token, for logging out.
func (m *TokenManager) RefreshToken(ctx context.Context, profile string) (string, error) {
	if err := m.check(profile); err != nil {
		return "", err
	}
	st, err := m.load(ctx, profile)
	if err != nil {
		return "", err
	}
	return st.Refresh, nil
}

// IDToken returns profile's saved ID token; "" when there is none.
func (m *TokenManager) IDToken(ctx context.Context, profile string) (string, error) {
	if err := m.check(profile); err != nil {
		return "", err
	}
	st, err := m.load(ctx, profile)
	if err != nil {
		return "", err
	}
	return st.ID, nil
}

// refresh rotates the tokens under the profile's lock. seen is what was read
// before taking it; stale, when set, is an access token that must not be
// handed out again even if it looks valid; minValid is how long the token
// handed out must last.
func (m *TokenManager) refresh(ctx context.Context, profile string, r Refresher, seen *storedTokens, stale string, minValid time.Duration) (*storedTokens, error) {
	// When the access token is still valid the rotation is only ahead of
	// time: if it cannot happen now (lock busy, server unreachable), the
	// valid token is better than an error, and the next call tries again.
	unlock, err := m.lock(ctx, profile)
	if err != nil {
		if stale == "" && seen.accessValid(m.now()) && seen.lastsFor(m.now(), minValid) {
			return seen, nil
		}
		return nil, err
	}
	defer unlock()

	st, err := m.load(ctx, profile)
	if err != nil {
		return nil, err
	}
	return m.rotateLocked(ctx, profile, r, st, stale, minValid)
}

// rotateLocked is refresh's work under the profile's lock, st being what the
// vault holds now.
func (m *TokenManager) rotateLocked(ctx context.Context, profile string, r Refresher, st *storedTokens, stale string, minValid time.Duration) (*storedTokens, error) {
	fresh := func(s *storedTokens) bool { return s.usableFor(m.now(), minValid) && s.Access != stale }
	if fresh(st) {
		return st, nil // another latch refreshed while we waited
	}
	if stale == "" && st.usable(m.now()) && st.lifetime() < minValid {
		// Only minValid asks for a rotation, and the next token would
		// last no longer: rotating would not help, on this call or any.
		return nil, tooShort(profile, st, minValid)
	}

	if st.Refresh == "" {
		return nil, fmt.Errorf("profile %q: the access token expired and the provider issued no refresh token: %w",
			profile, ErrLoginRequired)
	}
	t, err := r.Refresh(ctx, st.Refresh)
	if refused(err) {
		// Someone may have saved a new session without our lock (a login
		// racing with us, an older latch): then the refusal is about a token
		// that is no longer ours, so try once more with the current one.
		cur, lerr := m.load(ctx, profile)
		if lerr == nil && cur.Refresh != st.Refresh {
			if fresh(cur) {
				return cur, nil
			}
			st = cur
			t, err = r.Refresh(ctx, st.Refresh)
		}
	}
	switch {
	case refused(err):
		m.recordRefusal(ctx, profile, st)
		return nil, fmt.Errorf("profile %q: %w: %w", profile, ErrLoginRequired, err)
	case err != nil && stale == "" && st.accessValid(m.now()) && st.lastsFor(m.now(), minValid):
		return st, nil
	case err != nil:
		return nil, fmt.Errorf("refresh tokens of profile %q (the saved tokens are unchanged): %w", profile, err)
	}

	next, err := newStored(t, m.now())
	if err != nil {
		return nil, fmt.Errorf("refresh tokens of profile %q (the saved tokens are unchanged): %w", profile, err)
	}
	next.LoggedIn = st.LoggedIn
	next.Rotations = st.Rotations + 1
	if next.Refresh == "" {
		next.Refresh = st.Refresh // the provider does not rotate
	}
	if t.IDToken == "" {
		next.ID = st.ID // OpenID providers need not send a new ID token on refresh
	}
	if err := m.store(ctx, profile, next); err != nil {
		// The old refresh token is spent now: presenting it again after
		// the server's grace window reads as theft. Keep the new pair in
		// the session cache, where every later run finds it and saves it.
		if m.keepPending(ctx, profile, st, next) {
			m.warn(fmt.Sprintf("profile %q: the rotated tokens could not be saved to the vault (%v); "+
				"they are kept in %s until a later latch saves them — free the disk or fix the vault soon",
				profile, err, m.Cache.Where()))
			m.cacheAccess(ctx, profile, next)
			return m.checkLasts(profile, next, minValid)
		}
		// Within the server's grace window presenting the old token again
		// returns the same successor, so an immediate retry can still
		// save the session.
		return nil, fmt.Errorf("profile %q: the refresh succeeded at the server, but the new tokens could not be saved: %w; "+
			"try again right away, and if that fails, log in again", profile, err)
	}
	m.cacheAccess(ctx, profile, next)
	return m.checkLasts(profile, next, minValid)
}

// refused reports whether the server rejected the refresh token itself, as
// opposed to failing to answer.
func refused(err error) bool {
	return errors.Is(err, client.ErrReuseDetected) || errors.Is(err, client.ErrInvalidRefreshToken)
}

func (m *TokenManager) check(profile string) error {
	if m.Secrets == nil || m.Dir == "" {
		return errors.New("flows: TokenManager needs Secrets and Dir")
	}
	if err := vault.ValidateName(profile); err != nil {
		return fmt.Errorf("profile %q: %w", profile, err)
	}
	return nil
}

func (m *TokenManager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// load reads profile's current tokens: the vault's, or a rotated pair the
// vault could not save yet (see keepPending), which is newer.
func (m *TokenManager) load(ctx context.Context, profile string) (*storedTokens, error) {
	st, err := m.loadVault(ctx, profile)
	if err != nil {
		return nil, err
	}
	if p := m.pending(ctx, profile); p != nil && p.Prev == st.Refresh {
		return p.Next, nil
	}
	return st, nil
}

// loadVault reads profile's tokens saved in the vault.
func (m *TokenManager) loadVault(ctx context.Context, profile string) (*storedTokens, error) {
	raw, err := m.Secrets.Get(ctx, tokensKey(profile))
	if errors.Is(err, vault.ErrNotFound) {
		return nil, &noSessionError{profile: profile}
	}
	if err != nil {
		return nil, fmt.Errorf("read tokens of profile %q: %w", profile, err)
	}
	var st storedTokens
	// The decoder's errors quote no input, so no token can leak through them.
	if err := json.Unmarshal(raw, &st); err != nil || st.Access == "" {
		return nil, fmt.Errorf("the saved tokens of profile %q are unreadable: %w", profile, ErrLoginRequired)
	}
	return &st, nil
}

func (m *TokenManager) store(ctx context.Context, profile string, st *storedTokens) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return m.Secrets.Set(ctx, tokensKey(profile), raw)
}

// lock takes profile's lock file, waiting at most LockWait. The returned
// func releases it.
func (m *TokenManager) lock(ctx context.Context, profile string) (func(), error) {
	wait := m.LockWait
	if wait <= 0 {
		wait = defaultLockWait
	}
	path := filepath.Join(m.Dir, "locks", profile+".lock")
	unlock, err := vault.LockFile(ctx, path, wait)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("profile %q: another latch has been refreshing its tokens for more than %s (lock %s); "+
			"try again, or end that latch: %w", profile, wait, path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("token lock of profile %q: %w", profile, err)
	}
	return unlock, nil
}
