package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The abuse limits in the database, for a PostgreSQL deployment of several
// instances: each instance keeping its own buckets would let a brute force
// spread over N instances N times the configured rate. Each call is one
// statement, atomic on its own (an upsert locks its row), so the limits add
// no load to the write lock every write transaction takes (store.go).
//
// The same tables and statements exist on SQLite (migration 0008), where
// the tests run them too; a SQLite server uses the in-memory versions, as
// one machine needs nothing shared. On SQLite a call made inside a write
// transaction would wait for that transaction (accountExists does this), so
// the database versions are for PostgreSQL only.

// limitTimeout bounds each limiter and backoff statement: they stand in
// front of a request, and a database that does not answer fails them
// closed rather than holding the request.
const limitTimeout = 2 * time.Second

// limitDownRetry is the wait a limiter answers when the database fails.
const limitDownRetry = time.Second

// dbLimiter is a limiter whose buckets are rows of rate_buckets, one per
// (name, key). A row holds full_ms, the time at which the bucket is full
// again: at now it holds burst − (full_ms − now)/every tokens (at most
// burst), so a token can be taken while full_ms − now ≤ (burst−1)·every,
// taking one moves full_ms to max(full_ms, now) + every, and otherwise the
// next token comes in full_ms − now − (burst−1)·every. A missing row is a
// full bucket. This is the token bucket of memLimiter (x/time/rate) in one
// integer, so that a single upsert can read, refill, take and write it.
type dbLimiter struct {
	st    *store
	name  string // tells the limiters apart in the shared table
	every int64  // ms a token, rounded up: never faster than configured
	burst int64
	now   func() time.Time
	errs  dbErrors
}

func newDBLimiter(st *store, name string, r limitRate, now func() time.Time, log *slog.Logger) *dbLimiter {
	l := &dbLimiter{st: st, name: name, burst: int64(r.burst), now: now,
		errs: dbErrors{log: log, what: "the " + name + " rate limit"}}
	if r.burst > 0 {
		l.every = max(int64((r.every+time.Millisecond-1)/time.Millisecond), 1)
	}
	return l
}

// limitTake is the whole of allow. Its parameters: name, key, now+every (a
// new row: a full bucket less one token), last, now, now+every, every,
// last, where last = now+(burst−1)·every is the latest full_ms that still
// holds a token. ok says whether this call took a token, since a refused
// call leaves full_ms as it was and RETURNING shows only the new row.
const limitTake = `INSERT INTO rate_buckets (name, key, full_ms, ok) VALUES (?, ?, ?, 1)
ON CONFLICT (name, key) DO UPDATE SET
	full_ms = CASE WHEN rate_buckets.full_ms > ? THEN rate_buckets.full_ms
	               WHEN rate_buckets.full_ms < ? THEN ?
	               ELSE rate_buckets.full_ms + ? END,
	ok = CASE WHEN rate_buckets.full_ms > ? THEN 0 ELSE 1 END
RETURNING full_ms, ok`

func (l *dbLimiter) allow(key string) (bool, time.Duration) {
	if l.burst <= 0 {
		return true, 0
	}
	now := l.now().UnixMilli()
	last := now + (l.burst-1)*l.every
	ctx, cancel := context.WithTimeout(context.Background(), limitTimeout)
	defer cancel()
	var full, ok int64
	err := l.st.db.QueryRowContext(ctx, limitTake, l.name, []byte(limitKey(key)), now+l.every,
		last, now, now+l.every, l.every, last).Scan(&full, &ok)
	// Fail closed: a limit that lets everything through while the
	// database is down would be no limit for whoever can make it slow.
	if l.errs.note(err) {
		return false, limitDownRetry
	}
	if ok == 1 {
		return true, 0
	}
	return false, time.Duration(full-last) * time.Millisecond
}

// sweep deletes the buckets that have been full for idle: such a row says
// no more than a missing one, and no call has touched it since it filled
// (a refused call needs a bucket that is not full, a granted one empties it).
func (l *dbLimiter) sweep(idle time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*limitTimeout)
	defer cancel()
	_, err := l.st.db.ExecContext(ctx, "DELETE FROM rate_buckets WHERE name = ? AND full_ms < ?",
		l.name, l.now().Add(-idle).UnixMilli())
	l.errs.note(err)
}

// dbBackoff is memBackoff with its failures in auth_backoff, one row per
// key: the failures in a row, the time before which no attempt is let
// through (until_ms), and the last failure (last_ms).
type dbBackoff struct {
	st   *store
	now  func() time.Time
	errs dbErrors
}

func newDBBackoff(st *store, now func() time.Time, log *slog.Logger) *dbBackoff {
	return &dbBackoff{st: st, now: now, errs: dbErrors{log: log, what: "the login backoff"}}
}

// backoffFail counts a failure and sets until_ms by failDelay, in one
// statement; its parameters are key, the until_ms of a first failure, and
// now. failDelay has no SQL in both dialects (no pow in SQLite), so its
// values are spelled out as a CASE on the new count, from the same function
// (built on first use, not at start-up: latch token links this package too).
var backoffFail = sync.OnceValue(func() string {
	var b strings.Builder
	b.WriteString(`INSERT INTO auth_backoff (key, failures, until_ms, last_ms) VALUES (?, 1, ?, ?)
ON CONFLICT (key) DO UPDATE SET
	failures = auth_backoff.failures + 1,
	last_ms = excluded.last_ms,
	until_ms = CASE`)
	n := freeFailures + 1
	fmt.Fprintf(&b, "\n\t\tWHEN auth_backoff.failures + 1 < %d THEN auth_backoff.until_ms", n)
	for ; failDelay(n) < maxBackoff && n < freeFailures+64; n++ {
		fmt.Fprintf(&b, "\n\t\tWHEN auth_backoff.failures + 1 = %d THEN excluded.last_ms + %d", n, failDelay(n).Milliseconds())
	}
	fmt.Fprintf(&b, "\n\t\tELSE excluded.last_ms + %d END", maxBackoff.Milliseconds())
	return b.String()
})

func (b *dbBackoff) wait(key string) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), limitTimeout)
	defer cancel()
	var until int64
	err := b.st.db.QueryRowContext(ctx, "SELECT until_ms FROM auth_backoff WHERE key = ?", []byte(limitKey(key))).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) {
		err = nil
	}
	// Fail closed, as the limiter does.
	if b.errs.note(err) {
		return limitDownRetry
	}
	return max(time.Duration(until-b.now().UnixMilli())*time.Millisecond, 0)
}

func (b *dbBackoff) fail(key string) {
	now := b.now().UnixMilli()
	first := int64(0)
	if d := failDelay(1); d > 0 {
		first = now + d.Milliseconds()
	}
	b.exec(backoffFail(), []byte(limitKey(key)), first, now)
}

func (b *dbBackoff) succeed(key string) {
	b.exec("DELETE FROM auth_backoff WHERE key = ?", []byte(limitKey(key)))
}

// sweep forgets failures older than a day of quiet, as memBackoff does.
func (b *dbBackoff) sweep() {
	now := b.now()
	b.exec("DELETE FROM auth_backoff WHERE last_ms < ? AND until_ms < ?",
		now.Add(-24*time.Hour).UnixMilli(), now.UnixMilli())
}

func (b *dbBackoff) exec(q string, args ...any) {
	ctx, cancel := context.WithTimeout(context.Background(), limitTimeout)
	defer cancel()
	_, err := b.st.db.ExecContext(ctx, q, args...)
	b.errs.note(err)
}

// dbErrors logs a limit's database failures once per outage, at warn: a
// limit is asked on every request, and a log line each time would bury the
// first one.
type dbErrors struct {
	log  *slog.Logger
	what string
	down atomic.Bool
}

// note reports whether err is an error, logging the first of a run of them
// and the recovery after it.
func (d *dbErrors) note(err error) bool {
	if err == nil {
		if d.down.CompareAndSwap(true, false) {
			d.log.Info(d.what + " reaches the database again")
		}
		return false
	}
	if d.down.CompareAndSwap(false, true) {
		d.log.Warn(d.what+" cannot reach the database: refusing until it can", "err", err)
	}
	return true
}
