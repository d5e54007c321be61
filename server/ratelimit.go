package server

import (
	"crypto/sha256"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limitKey is how a caller's key is stored: a fixed 16 bytes, so that long
// identifiers chosen by a client cost no more memory than short ones.
func limitKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return string(h[:16])
}

// limiter is a set of token buckets keyed by a string (an IP, an account).
// allow takes one token for key, or says how long until one is available;
// sweep drops buckets idle for idle. memLimiter keeps them in this process
// (SQLite: one machine), dbLimiter in the database, where every instance of
// a PostgreSQL deployment draws from the same buckets (ratelimit_db.go).
type limiter interface {
	allow(key string) (ok bool, retry time.Duration)
	sweep(idle time.Duration)
}

// backoff locks an account out for exponentially longer after repeated
// failures: wait is how long key must still wait, fail and succeed record
// an attempt, sweep forgets old quiet failures. memBackoff keeps them in
// this process, dbBackoff in the database (ratelimit_db.go).
type backoff interface {
	wait(key string) time.Duration
	fail(key string)
	succeed(key string)
	sweep()
}

// memLimiter is a set of token buckets in memory, each refilling at every
// with a burst of burst. A burst of zero disables it. Idle buckets are
// dropped by sweep.
type memLimiter struct {
	mu      sync.Mutex
	every   rate.Limit
	burst   int
	now     func() time.Time
	buckets map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// newMemLimiter makes a memLimiter of rate r.
func newMemLimiter(r limitRate, now func() time.Time) *memLimiter {
	l := &memLimiter{now: now, buckets: map[string]*bucket{}}
	if r.burst > 0 {
		l.every, l.burst = rate.Every(r.every), r.burst
	}
	return l
}

// Mail limits: a mail-sending request (forgot, resend) may mail one account
// or one address mailBurst times, then once per mailEvery. Tight, because
// each request puts a mail in someone's inbox.
const (
	mailBurst = 3
	mailEvery = 10 * time.Minute
)

// limitRate is a limiter's refill interval (one token per every) and burst;
// a burst of zero disables it.
type limitRate struct {
	every time.Duration
	burst int
}

// perMinuteRate is the IP and account limits' rate: perMinute a minute, a burst of half
// that; off for zero or less.
func perMinuteRate(perMinute int) limitRate {
	if perMinute <= 0 {
		return limitRate{}
	}
	return limitRate{every: time.Minute / time.Duration(perMinute), burst: max(perMinute/2, 1)}
}

// mailRate is the mail limit's rate: off (tests) when the per-account limit is.
func mailRate(rateAccount int) limitRate {
	if rateAccount < 0 {
		return limitRate{}
	}
	return limitRate{every: mailEvery, burst: mailBurst}
}

// allow takes one token for key, or says how long until one is available.
func (l *memLimiter) allow(key string) (ok bool, retry time.Duration) {
	if l == nil || l.burst <= 0 {
		return true, 0
	}
	now := l.now()
	key = limitKey(key)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(l.every, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

func (l *memLimiter) sweep(idle time.Duration) {
	if l == nil {
		return
	}
	cut := l.now().Add(-idle)
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, b := range l.buckets {
		if b.seen.Before(cut) {
			delete(l.buckets, k)
		}
	}
}

// memBackoff locks an account out for exponentially longer after repeated
// failed logins: after freeFailures failures in a row, 1 s, then 2 s, 4 s …
// up to maxBackoff (failDelay). A success clears it.
type memBackoff struct {
	mu       sync.Mutex
	now      func() time.Time
	failures map[string]*failState
}

type failState struct {
	n     int
	until time.Time
	last  time.Time
}

const (
	freeFailures = 5
	maxBackoff   = 15 * time.Minute
)

// failDelay is how long the nth failure in a row locks its key out.
func failDelay(n int) time.Duration {
	over := n - freeFailures
	if over <= 0 {
		return 0
	}
	return time.Duration(math.Min(float64(time.Second)*math.Pow(2, float64(over-1)), float64(maxBackoff)))
}

func newBackoff(now func() time.Time) *memBackoff {
	return &memBackoff{now: now, failures: map[string]*failState{}}
}

// wait returns how long key must still wait before its next attempt.
func (b *memBackoff) wait(key string) time.Duration {
	key = limitKey(key)
	b.mu.Lock()
	defer b.mu.Unlock()
	if f := b.failures[key]; f != nil {
		if d := f.until.Sub(b.now()); d > 0 {
			return d
		}
	}
	return 0
}

func (b *memBackoff) fail(key string) {
	key = limitKey(key)
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.failures[key]
	if f == nil {
		f = &failState{}
		b.failures[key] = f
	}
	f.n++
	f.last = now
	if d := failDelay(f.n); d > 0 {
		f.until = now.Add(d)
	}
}

func (b *memBackoff) succeed(key string) {
	key = limitKey(key)
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.failures, key)
}

// sweep forgets failures older than a day of quiet.
func (b *memBackoff) sweep() {
	cut := b.now().Add(-24 * time.Hour)
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, f := range b.failures {
		if f.last.Before(cut) && f.until.Before(b.now()) {
			delete(b.failures, k)
		}
	}
}

// retrySeconds rounds a wait up to whole seconds for Retry-After.
func retrySeconds(d time.Duration) int {
	return int(math.Ceil(d.Seconds()))
}
