package server

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/internal/pgtest"
)

// limitDialects runs fn against a fresh store of each dialect: SQLite in
// memory always, PostgreSQL when LATCH_TEST_POSTGRES names a cluster. The
// database limits run on both, so that their SQL is proven on both.
func limitDialects(t *testing.T, fn func(t *testing.T, st *store)) {
	for _, d := range []struct{ name, db string }{{"sqlite", MemoryDB}, {"postgres", ""}} {
		t.Run(d.name, func(t *testing.T) {
			db := d.db
			if db == "" {
				db = pgtest.Database(t)
			}
			st, err := openStore(context.Background(), db)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			fn(t, st)
		})
	}
}

func countRows(t *testing.T, st *store, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := st.db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDBLimiter replays one script on the in-memory limiter and on the
// database one, which must answer alike, each step also checked against
// the expected answer: the burst, the refusal with its wait, the refill,
// a refusal that takes no token, and keys and limiters apart.
func TestDBLimiter(t *testing.T) {
	limitDialects(t, func(t *testing.T, st *store) {
		c := newClock()
		mem := newMemLimiter(perMinuteRate(6), c.Now) // a token every 10 s, a burst of 3
		db := newDBLimiter(st, "ip", perMinuteRate(6), c.Now, slog.Default())
		other := newDBLimiter(st, "account", perMinuteRate(6), c.Now, slog.Default())
		steps := []struct {
			advance time.Duration
			key     string
			ok      bool
			retry   time.Duration
		}{
			{0, "a", true, 0},
			{0, "a", true, 0},
			{0, "a", true, 0},
			{0, "a", false, 10 * time.Second}, // the burst is spent
			{0, "b", true, 0},                 // another key has its own
			{4 * time.Second, "a", false, 6 * time.Second},
			{5 * time.Second, "a", false, time.Second}, // refusals took nothing
			{time.Second, "a", true, 0},                // one token refilled ...
			{0, "a", false, 10 * time.Second},          // ... and taken
			{time.Hour, "a", true, 0},                  // full again, not fuller
			{0, "a", true, 0},
			{0, "a", true, 0},
			{0, "a", false, 10 * time.Second},
		}
		for i, s := range steps {
			c.Add(s.advance)
			mok, mretry := mem.allow(s.key)
			dok, dretry := db.allow(s.key)
			if dok != s.ok || dretry != s.retry {
				t.Fatalf("step %d: db allow = %v %v, want %v %v", i, dok, dretry, s.ok, s.retry)
			}
			// x/time/rate computes its wait in floating point: compare
			// what a client is told, whole seconds.
			if mok != dok || retrySeconds(mretry) != retrySeconds(dretry) {
				t.Fatalf("step %d: memory says %v %v, database %v %v", i, mok, mretry, dok, dretry)
			}
		}
		if ok, _ := other.allow("a"); !ok {
			t.Fatal("a limiter of another name shares the bucket")
		}
		// Keys are stored hashed, whatever their length.
		db.allow(strings.Repeat("x", 10000))
		var lens []int64
		rows, err := st.db.Query("SELECT length(key) FROM rate_buckets")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var n int64
			rows.Scan(&n)
			lens = append(lens, n)
		}
		rows.Close()
		if len(lens) != 4 {
			t.Fatalf("%d buckets, want 4", len(lens))
		}
		for _, n := range lens {
			if n != 16 {
				t.Fatalf("a key of %d bytes is stored", n)
			}
		}
	})
}

func TestDBLimiterRates(t *testing.T) {
	limitDialects(t, func(t *testing.T, st *store) {
		c := newClock()
		cases := []struct {
			name  string
			rate  limitRate
			burst int
			retry time.Duration
		}{
			{"mail", mailRate(0), mailBurst, mailEvery},
			{"account", perMinuteRate(7), 3, 8572 * time.Millisecond}, // a ms rounded up
			{"ip", perMinuteRate(1), 1, time.Minute},
		}
		for _, tc := range cases {
			l := newDBLimiter(st, tc.name, tc.rate, c.Now, slog.Default())
			for i := range tc.burst {
				if ok, _ := l.allow("k"); !ok {
					t.Fatalf("%s: call %d refused", tc.name, i)
				}
			}
			if ok, retry := l.allow("k"); ok || retry != tc.retry {
				t.Fatalf("%s: after the burst: %v %v, want a wait of %v", tc.name, ok, retry, tc.retry)
			}
		}
		// Off: everything passes and nothing is stored.
		for _, r := range []limitRate{perMinuteRate(0), perMinuteRate(-1), mailRate(-1)} {
			l := newDBLimiter(st, "off", r, c.Now, slog.Default())
			for range 10 {
				if ok, _ := l.allow("k"); !ok {
					t.Fatal("a disabled limiter refused")
				}
			}
		}
		if n := countRows(t, st, "SELECT count(*) FROM rate_buckets WHERE name = 'off'"); n != 0 {
			t.Fatalf("a disabled limiter stored %d rows", n)
		}
	})
}

// TestDBLimiterSweep: sweep deletes a bucket full for idle, and only such.
func TestDBLimiterSweep(t *testing.T) {
	limitDialects(t, func(t *testing.T, st *store) {
		c := newClock()
		l := newDBLimiter(st, "ip", perMinuteRate(6), c.Now, slog.Default())
		l.allow("old") // full again 10 s later
		c.Add(time.Hour)
		l.allow("new")
		c.Add(11 * time.Second) // old has been full for an hour and a second
		l.sweep(time.Hour)
		if n := countRows(t, st, "SELECT count(*) FROM rate_buckets"); n != 1 {
			t.Fatalf("%d buckets after the sweep, want 1", n)
		}
		// What was swept comes back full.
		for range 3 {
			if ok, _ := l.allow("old"); !ok {
				t.Fatal("a swept bucket is not full")
			}
		}
	})
}

// TestDBBackoff replays failures on the in-memory backoff and the database
// one: free failures, then 1 s, 2 s, 4 s … up to maxBackoff; a success
// clears it; the sweep forgets a day of quiet.
func TestDBBackoff(t *testing.T) {
	limitDialects(t, func(t *testing.T, st *store) {
		c := newClock()
		mem := newBackoff(c.Now)
		db := newDBBackoff(st, c.Now, slog.Default())
		want := []time.Duration{0, 0, 0, 0, 0, time.Second, 2 * time.Second, 4 * time.Second}
		for i := range 20 {
			mem.fail("alice")
			db.fail("alice")
			w := maxBackoff
			if i < len(want) {
				w = want[i]
			} else if i < 15 {
				w = time.Second << (i - freeFailures)
			}
			if got := db.wait("alice"); got != w || mem.wait("alice") != got {
				t.Fatalf("failure %d: wait %v (memory %v), want %v", i+1, got, mem.wait("alice"), w)
			}
			c.Add(time.Second)
			if got, m := db.wait("alice"), mem.wait("alice"); got != m || got != max(w-time.Second, 0) {
				t.Fatalf("failure %d, a second later: wait %v (memory %v)", i+1, got, m)
			}
		}
		if db.wait("bob") != 0 {
			t.Fatal("another key waits")
		}
		db.succeed("alice")
		mem.succeed("alice")
		for i := range freeFailures {
			db.fail("alice")
			if d := db.wait("alice"); d != 0 {
				t.Fatalf("after a success, failure %d waits %v", i+1, d)
			}
		}
		// The sweep keeps a key failing within the day, and one still
		// locked; it forgets a day of quiet.
		db.fail("alice") // locked 1 s
		db.fail("bob")
		c.Add(24*time.Hour + time.Second)
		db.fail("carol")
		db.sweep()
		if n := countRows(t, st, "SELECT count(*) FROM auth_backoff"); n != 1 {
			t.Fatalf("%d rows after the sweep, want carol's", n)
		}
		if n := countRows(t, st, "SELECT count(*) FROM auth_backoff WHERE length(key) = 16 AND failures = 1"); n != 1 {
			t.Fatal("carol's row is not a hashed key with one failure")
		}
	})
}

// TestDBLimitsFailClosed: with the database gone the limiter refuses and
// the backoff makes wait, logged once, not on every call.
func TestDBLimitsFailClosed(t *testing.T) {
	limitDialects(t, func(t *testing.T, st *store) {
		var logs syncBuffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		c := newClock()
		l := newDBLimiter(st, "ip", perMinuteRate(6), c.Now, log)
		b := newDBBackoff(st, c.Now, log)
		st.Close()
		for range 3 {
			if ok, retry := l.allow("a"); ok || retry != limitDownRetry {
				t.Fatalf("database down: allow = %v %v", ok, retry)
			}
			if d := b.wait("a"); d != limitDownRetry {
				t.Fatalf("database down: wait = %v", d)
			}
			b.fail("a")
		}
		out := logs.String()
		if n := strings.Count(out, "level=WARN"); n != 2 {
			t.Fatalf("%d warnings, want one per limit:\n%s", n, out)
		}
	})
}

// TestLimitsSharedAcrossInstances: two instances on one database hold a
// brute force spread over both to the configured per-account rate and the
// backoff, as one instance would. On PostgreSQL the servers share the
// limits as New builds them; on SQLite (in-memory limits) the test gives
// both the database ones, to run the same property there.
func TestLimitsSharedAcrossInstances(t *testing.T) {
	db := filepath.Join(t.TempDir(), "latch.db")
	const rateAccount = 8 // a burst of 4, under freeFailures
	var envs []*env
	for range 2 {
		e := newEnv(t, func(c *Config) { c.DBPath = db; c.RateAccount = rateAccount })
		if e.srv.st.dialect.name() == "sqlite" {
			e.srv.acctLimit = newDBLimiter(e.srv.st, "account", perMinuteRate(rateAccount), e.srv.now, e.srv.log)
			e.srv.backoff = newDBBackoff(e.srv.st, e.srv.now, e.srv.log)
		}
		envs = append(envs, e)
	}
	login := func(e *env, id string) *resp {
		return e.do("POST", "/auth/login", map[string]string{"identifier": id, "password": "wrong"})
	}
	t.Run("rate", func(t *testing.T) {
		for i := range rateAccount / 2 {
			if r := login(envs[i%2], "mallory"); r.Status != 401 {
				t.Fatalf("attempt %d: %d %s", i+1, r.Status, r.Body)
			}
		}
		for i, e := range envs {
			if r := login(e, "mallory"); r.Status != 429 || r.Header.Get("Retry-After") != "8" {
				t.Fatalf("past the burst, instance %d: %d Retry-After=%q", i, r.Status, r.Header.Get("Retry-After"))
			}
		}
	})
	t.Run("backoff", func(t *testing.T) {
		// The per-account limit refills one attempt every 7.5 s: pace the
		// attempts so that only the backoff can refuse.
		for i := range freeFailures + 1 {
			for _, e := range envs {
				e.clock.Add(8 * time.Second)
			}
			if r := login(envs[i%2], "trudy"); r.Status != 401 {
				t.Fatalf("failure %d: %d %s", i+1, r.Status, r.Body)
			}
		}
		for i, e := range envs {
			if r := login(e, "trudy"); r.Status != 429 || r.Header.Get("Retry-After") != "1" {
				t.Fatalf("locked, instance %d: %d Retry-After=%q", i, r.Status, r.Header.Get("Retry-After"))
			}
		}
	})
}

// limitKeyLens is the length of every key the backoff and the per-account
// limiter of s hold, in memory or in the database.
func limitKeyLens(t *testing.T, s *Server) (backoffKeys, acctKeys []int) {
	t.Helper()
	if b, ok := s.backoff.(*memBackoff); ok {
		for k := range b.failures {
			backoffKeys = append(backoffKeys, len(k))
		}
	} else {
		backoffKeys = dbKeyLens(t, s.st, "SELECT length(key) FROM auth_backoff")
	}
	if l, ok := s.acctLimit.(*memLimiter); ok {
		for k := range l.buckets {
			acctKeys = append(acctKeys, len(k))
		}
	} else {
		acctKeys = dbKeyLens(t, s.st, "SELECT length(key) FROM rate_buckets WHERE name = 'account'")
	}
	return backoffKeys, acctKeys
}

func dbKeyLens(t *testing.T, st *store, q string) []int {
	t.Helper()
	rows, err := st.db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}
