package agent

import (
	"errors"
	"strings"
	"sync"
	"time"
)

// maxEntries bounds what one agent holds; latch keeps a handful per home.
const maxEntries = 1024

var errFull = errors.New("the latch agent holds too many entries")

type key struct{ scope, name string }

type entry struct {
	value   []byte
	expires time.Time
}

// store holds the entries in memory. One timer fires at the earliest expiry
// and wipes what has expired; another fires when the store has been empty
// for idle, and tells the server to exit (idleC). Reads never move either.
type store struct {
	idle  time.Duration
	idleC chan struct{} // receives once the store has been empty for idle

	mu         sync.Mutex
	m          map[key]*entry
	expiryT    *time.Timer
	idleT      *time.Timer
	emptySince time.Time
	closed     bool
}

func newStore(idle time.Duration) *store {
	s := &store{idle: idle, idleC: make(chan struct{}, 1), m: make(map[key]*entry), emptySince: time.Now()}
	s.idleT = time.AfterFunc(idle, s.idleFired)
	return s
}

// get returns a copy of the value under k. It does not extend the entry.
func (s *store) get(k key) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(k)
	if !ok {
		return nil, false
	}
	return append([]byte(nil), e.value...), true
}

// put stores value (which the store now owns) under k for ttl.
func (s *store) put(k key, value []byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		clear(value)
		return errors.New("the latch agent is stopping")
	}
	if old, ok := s.m[k]; ok {
		clear(old.value)
	} else if len(s.m) >= maxEntries {
		clear(value)
		return errFull
	}
	s.m[k] = &entry{value: value, expires: time.Now().Add(ttl)}
	s.changed()
	return nil
}

// touch gives the entry under k a new life of ttl from now.
func (s *store) touch(k key, ttl time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(k)
	if !ok {
		return false
	}
	e.expires = time.Now().Add(ttl)
	s.changed()
	return true
}

func (s *store) delete(k key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[k]; ok {
		clear(e.value)
		delete(s.m, k)
		s.changed()
	}
}

// clearScope removes every entry of scope.
func (s *store) clearScope(scope, prefix string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.m {
		if k.scope == scope && strings.HasPrefix(k.name, prefix) {
			clear(e.value)
			delete(s.m, k)
		}
	}
	s.changed()
}

// close wipes every value and stops the timers.
func (s *store) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for k, e := range s.m {
		clear(e.value)
		delete(s.m, k)
	}
	s.idleT.Stop()
	if s.expiryT != nil {
		s.expiryT.Stop()
	}
}

// live returns the entry under k unless it has expired (then it is wiped
// now rather than at the next sweep). s.mu is held.
func (s *store) live(k key) (*entry, bool) {
	e, ok := s.m[k]
	if !ok {
		return nil, false
	}
	if !time.Now().Before(e.expires) {
		clear(e.value)
		delete(s.m, k)
		s.changed()
		return nil, false
	}
	return e, true
}

// changed re-arms the expiry timer for the earliest expiry and the idle
// timer when the store has just become empty. s.mu is held.
func (s *store) changed() {
	if s.closed {
		return
	}
	var first time.Time
	for _, e := range s.m {
		if first.IsZero() || e.expires.Before(first) {
			first = e.expires
		}
	}
	switch {
	case first.IsZero() && s.expiryT != nil:
		s.expiryT.Stop()
	case !first.IsZero() && s.expiryT == nil:
		s.expiryT = time.AfterFunc(time.Until(first), s.sweep)
	case !first.IsZero():
		s.expiryT.Reset(time.Until(first))
	}

	if len(s.m) > 0 {
		s.emptySince = time.Time{}
		s.idleT.Stop()
	} else if s.emptySince.IsZero() {
		s.emptySince = time.Now()
		s.idleT.Reset(s.idle)
	}
}

// sweep wipes the entries that have expired.
func (s *store) sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	now := time.Now()
	for k, e := range s.m {
		if !now.Before(e.expires) {
			clear(e.value)
			delete(s.m, k)
		}
	}
	s.changed()
}

// idleFired tells the server to exit if the store is still empty and has
// been for idle (a timer stopped too late may fire for an older emptiness).
func (s *store) idleFired() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(s.m) > 0 || s.emptySince.IsZero() || time.Since(s.emptySince) < s.idle {
		return
	}
	select {
	case s.idleC <- struct{}{}:
	default:
	}
}
