package vault

// The unlocked identity in the session cache: how it is kept, found,
// re-armed and let go.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
)

// cachedIdentity returns the identity kept in the session cache, or nil.
// With use, it re-arms the entry's idle timer when it is due — with Touch,
// which never brings back an entry that latch vault lock removed meanwhile —
// and notes the time of use beside it for LockState.
func (s *fileSecrets) cachedIdentity(ctx context.Context, use bool) *age.X25519Identity {
	e, ok := s.readCachedIdentity(ctx)
	if !ok {
		return nil
	}
	if use && time.Since(e.used) > rearmAfter {
		if err := s.cache.Touch(ctx, CacheIdentity, e.idle); err != nil {
			return nil // locked a moment ago
		}
		s.cache.Put(ctx, cacheUsed, strconv.AppendInt(nil, time.Now().Unix(), 10), e.idle)
	}
	s.mu.Lock()
	s.id, s.from = e.id, sourceCache
	s.mu.Unlock()
	return e.id
}

// readCachedIdentity reads the cache's entry without using it. An entry
// whose idle time has run out by its own record is treated as gone: a latch
// killed between storing it and setting its timeout leaves one that never
// expires.
func (s *fileSecrets) readCachedIdentity(ctx context.Context) (cachedIdentity, bool) {
	if s.cache == nil {
		return cachedIdentity{}, false
	}
	raw, err := s.cache.Get(ctx, CacheIdentity)
	if err != nil {
		return cachedIdentity{}, false
	}
	e, ok := parseCachedIdentity(raw)
	if !ok {
		return cachedIdentity{}, false
	}
	if raw, err := s.cache.Get(ctx, cacheUsed); err == nil {
		if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil && time.Unix(n, 0).After(e.used) {
			e.used = time.Unix(n, 0)
		}
	}
	if time.Since(e.used) > e.idle+time.Minute {
		s.cache.Delete(ctx, CacheIdentity)
		return cachedIdentity{}, false
	}
	return e, true
}

// stillUnlocked reports whether an identity this process took from the
// session cache is still there: after latch vault lock, or the idle
// timeout, a long-running latch (the interface) stops using it too.
func (s *fileSecrets) stillUnlocked(ctx context.Context) bool {
	s.mu.Lock()
	fromCache := s.id != nil && s.from == sourceCache
	s.mu.Unlock()
	if !fromCache {
		return true
	}
	if _, err := s.cache.Get(ctx, CacheIdentity); err == nil {
		return true
	}
	s.mu.Lock()
	s.id, s.from = nil, ""
	s.mu.Unlock()
	return false
}

// setIdentity remembers id for this process and, with toCache, in the
// session cache (best effort: without a cache each process unlocks itself).
func (s *fileSecrets) setIdentity(ctx context.Context, id *age.X25519Identity, from string, toCache bool) error {
	s.mu.Lock()
	s.id, s.from = id, from
	s.mu.Unlock()
	if !toCache || s.cache == nil {
		return nil
	}
	idle := s.idle
	if idle <= 0 {
		idle = DefaultIdle
	}
	e := cachedIdentity{id: id, idle: idle, used: time.Now()}
	return s.cache.Put(ctx, CacheIdentity, e.encode(), idle)
}

func (s *fileSecrets) dropIdentity(ctx context.Context) {
	s.mu.Lock()
	s.id, s.from = nil, ""
	s.mu.Unlock()
	if s.cache != nil {
		s.cache.Delete(ctx, CacheIdentity)
	}
}

func (s *fileSecrets) source() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.from
}

// cachedIdentity is the session cache's entry for an unlocked vault: the
// identity, the idle timeout it was unlocked with, and its last use.
type cachedIdentity struct {
	id   *age.X25519Identity
	idle time.Duration
	used time.Time
}

func (e cachedIdentity) encode() []byte {
	return fmt.Appendf(nil, "%s\nidle=%d\nused=%d\n", e.id, int64(e.idle/time.Second), e.used.Unix())
}

func parseCachedIdentity(raw []byte) (cachedIdentity, bool) {
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 3 {
		return cachedIdentity{}, false
	}
	id, err := age.ParseX25519Identity(lines[0])
	if err != nil {
		return cachedIdentity{}, false
	}
	idle, err1 := strconv.ParseInt(strings.TrimPrefix(lines[1], "idle="), 10, 64)
	used, err2 := strconv.ParseInt(strings.TrimPrefix(lines[2], "used="), 10, 64)
	if err1 != nil || err2 != nil || idle <= 0 || idle > int64(maxIdle/time.Second) {
		return cachedIdentity{}, false
	}
	return cachedIdentity{id: id, idle: time.Duration(idle) * time.Second, used: time.Unix(used, 0)}, true
}
