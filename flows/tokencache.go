package flows

import (
	"context"
	"encoding/json"
	"time"

	"github.com/latch-dev/latch/vault"
)

// The token manager's use of the session cache. The vault stays the source
// of truth: every entry here is a copy made under the profile's lock (or just
// read from the vault), a miss or an unreadable entry falls through to the
// vault, and a cache that fails is never a reason to fail a command.

// cachedAccess returns profile's access token and its times (never the
// refresh token: the cache holds none) when it is there, still good to hand
// out, and lasts minValid.
func (m *TokenManager) cachedAccess(ctx context.Context, profile string, minValid time.Duration) (*storedTokens, bool) {
	if m.Cache == nil {
		return nil, false
	}
	raw, err := m.Cache.Get(ctx, vault.CacheAccessToken(profile))
	if err != nil {
		return nil, false
	}
	var st storedTokens
	if json.Unmarshal(raw, &st) != nil || st.Access == "" || !st.usableFor(m.now(), minValid) {
		return nil, false
	}
	return &st, true
}

// cacheAccess puts st's access token in the cache until it stops being
// usable, and no longer than the vault stays unlocked: a vault that locks
// itself hands out nothing. Only what usable needs is kept: never the
// refresh or ID token.
func (m *TokenManager) cacheAccess(ctx context.Context, profile string, st *storedTokens) {
	if m.Cache == nil {
		return
	}
	now := m.now()
	until := time.Unix(st.AccessExp, 0).Add(-st.skew())
	if due := st.rotateDueAt(); !due.IsZero() && due.Before(until) {
		until = due
	}
	if l, ok := m.Secrets.(vault.Lockable); ok {
		// Only a vault unlocked for the session (its key in the cache)
		// lends its tokens to the session: one opened with
		// LATCH_VAULT_IDENTITY keeps them to the processes that have it.
		ls := l.LockState(ctx)
		if ls.State != "unlocked" || ls.Until.IsZero() {
			return
		}
		if !ls.Until.IsZero() && ls.Until.Before(until) {
			until = ls.Until
		}
	}
	ttl := until.Sub(now)
	if ttl < time.Second {
		return
	}
	raw, err := json.Marshal(storedTokens{Access: st.Access, AccessExp: st.AccessExp, Issued: st.Issued, RefreshExp: st.RefreshExp})
	if err != nil {
		return
	}
	m.Cache.Put(ctx, vault.CacheAccessToken(profile), raw, ttl)
}

func (m *TokenManager) uncache(ctx context.Context, name string) {
	if m.Cache != nil {
		m.Cache.Delete(ctx, name)
	}
}

// pendingPair is a rotated token pair the vault could not save: Next
// replaced the refresh token Prev at the server.
type pendingPair struct {
	Prev string        `json:"prev"`
	Next *storedTokens `json:"next"`
}

// pendingTTL bounds how long an unsaved pair waits in the cache when the
// refresh token's lifetime is unknown.
const pendingTTL = 7 * 24 * time.Hour

// keepPending puts a pair the vault could not save in the cache, next having
// replaced st at the server; it reports whether it is there. The pair names
// the refresh token the vault holds: when st was itself an unsaved pair (the
// disk stayed full over two rotations), that is st's own predecessor.
func (m *TokenManager) keepPending(ctx context.Context, profile string, st, next *storedTokens) bool {
	if m.Cache == nil {
		return false
	}
	prev := st.Refresh
	if p := m.pending(ctx, profile); p != nil && p.Next.Refresh == st.Refresh {
		prev = p.Prev
	}
	// The ID token is only ever displayed; leaving it out keeps the entry
	// small enough for a user's kernel key quota (20 000 bytes).
	kept := *next
	kept.ID = ""
	raw, err := json.Marshal(pendingPair{Prev: prev, Next: &kept})
	if err != nil {
		return false
	}
	ttl := pendingTTL
	if next.RefreshExp != 0 {
		ttl = time.Unix(next.RefreshExp, 0).Sub(m.now())
	}
	if ttl < time.Second {
		return false
	}
	return m.Cache.Put(ctx, vault.CachePending(profile), raw, ttl) == nil
}

// pending returns profile's unsaved pair, or nil.
func (m *TokenManager) pending(ctx context.Context, profile string) *pendingPair {
	if m.Cache == nil {
		return nil
	}
	raw, err := m.Cache.Get(ctx, vault.CachePending(profile))
	if err != nil {
		return nil
	}
	var p pendingPair
	if json.Unmarshal(raw, &p) != nil || p.Next == nil || p.Next.Access == "" || p.Prev == "" {
		return nil
	}
	return &p
}

// savePending saves an unsaved pair to the vault, under the profile's lock,
// when it is still the successor of what the vault holds; a pair that is not
// (the profile logged in again since) is dropped. Failing to save leaves it
// where it is, and load keeps using it.
func (m *TokenManager) savePending(ctx context.Context, profile string) {
	if m.pending(ctx, profile) == nil {
		return
	}
	unlock, err := m.lock(ctx, profile)
	if err != nil {
		return
	}
	defer unlock()
	p := m.pending(ctx, profile)
	if p == nil {
		return
	}
	cur, err := m.loadVault(ctx, profile)
	if err != nil {
		return
	}
	if cur.Refresh != p.Prev {
		m.uncache(ctx, vault.CachePending(profile))
		return
	}
	if err := m.store(ctx, profile, p.Next); err != nil {
		m.warn("profile " + profile + ": the rotated tokens kept in the session cache still cannot be saved to the vault: " + err.Error())
		return
	}
	m.uncache(ctx, vault.CachePending(profile))
}

func (m *TokenManager) warn(msg string) {
	if m.Warn != nil {
		m.Warn(msg)
	}
}
