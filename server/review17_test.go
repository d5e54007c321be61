package server

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-dev/latch/internal/pgtest"
)

// Review of issue 17. Each test here guards a property the PostgreSQL store
// must hold and, at the time of the review, did not.

// TestReview17UserAgentStoredAsText: a login stores the caller's User-Agent
// (cut to 200 bytes) in sessions and audit_events. net/http lets any byte
// >= 0x80 through in a header, and a byte cut can split a UTF-8 character:
// PostgreSQL refuses such text, so the login was a 500 on PostgreSQL while it
// works on SQLite. text.go checks paths, queries, forms and JSON, not headers.
func TestReview17UserAgentStoredAsText(t *testing.T) {
	for _, tc := range []struct{ name, ua string }{
		{"cut inside a character", strings.Repeat("a", 199) + "é"},
		{"not UTF-8", "curl/8 \xff\xfe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.register("alice", "alice@example.com")
			r := e.do("POST", "/auth/login", map[string]string{"identifier": "alice", "password": goodPassword},
				"User-Agent", tc.ua)
			if r.Status != http.StatusOK {
				t.Fatalf("login with User-Agent %q: %d %s", tc.ua, r.Status, r.Body)
			}
			var ua string
			if err := e.srv.st.db.QueryRow("SELECT user_agent FROM sessions").Scan(&ua); err != nil {
				t.Fatal(err)
			}
			if !textOK(ua) {
				t.Fatalf("stored user agent %q is not valid text", ua)
			}
		})
	}
}

// TestReview17RotationUnderRepeatableRead: exactly-once rotation across
// instances rests on the advisory lock, which only works if every statement
// after it sees what the previous lock holder committed, i.e. under READ
// COMMITTED. A database (or role) whose default_transaction_isolation is
// REPEATABLE READ or SERIALIZABLE — a common hardening — takes the
// snapshot at the lock statement itself, before the wait: the second
// instance then reads the token as unused and fails with a serialization
// error (a 500) instead of answering the grace successor. The store must ask
// for READ COMMITTED itself.
func TestReview17RotationUnderRepeatableRead(t *testing.T) {
	if !pgtest.Enabled() {
		t.Skip("PostgreSQL only (LATCH_TEST_DB=postgres)")
	}
	url := pgtest.Database(t)
	admin, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var name string
	if err := admin.QueryRow("SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("ALTER DATABASE " + name + " SET default_transaction_isolation = 'repeatable read'"); err != nil {
		t.Fatal(err)
	}
	a := newEnv(t, func(c *Config) { c.DBPath = url })
	b := newEnv(t, func(c *Config) { c.DBPath = url })
	a.register("alice", "alice@example.com")
	p := a.login("alice")

	// Hold the write lock, let both instances queue behind it (each takes
	// its snapshot there), then let go.
	ctx := context.Background()
	holder, err := admin.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec("SELECT pg_advisory_xact_lock(" + strconv.Itoa(writeLockKey) + ")"); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"refresh_token": p.RefreshToken})
	statuses := make([]int, 2)
	var wg sync.WaitGroup
	for i, e := range []*env{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.http.Client().Post(e.http.URL+"/auth/refresh", "application/json", bytes.NewReader(body))
			if err != nil {
				return
			}
			res.Body.Close()
			statuses[i] = res.StatusCode
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var waiting int
		if err := admin.QueryRow("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 2 {
			break
		}
		if time.Now().After(deadline) {
			holder.Rollback()
			t.Fatalf("%d instances wait for the write lock, want 2", waiting)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, with a bound
	}
	holder.Rollback()
	wg.Wait()
	for i, st := range statuses {
		if st != http.StatusOK {
			t.Errorf("instance %d answered %d: want one rotation and one grace answer", i, st)
		}
	}
}

// TestReview17StuckLockHolderIsBounded: every write of every instance waits
// for the one advisory lock. An instance that stops while holding it (a
// frozen process or VM, a network partition: its backend sits "idle in
// transaction") blocks all writes of the deployment — every login and every
// refresh — until TCP keepalive notices, two hours by default. A write
// transaction must bound that: idle_in_transaction_session_timeout ends such
// a session and releases its lock; lock_timeout lets waiters fail instead of
// piling up behind it. Both are read inside a write transaction, so a
// session default and a SET LOCAL both pass.
func TestReview17StuckLockHolderIsBounded(t *testing.T) {
	if !pgtest.Enabled() {
		t.Skip("PostgreSQL only (LATCH_TEST_DB=postgres)")
	}
	e := newEnv(t)
	ctx := context.Background()
	err := e.srv.st.tx(ctx, func(tx *sql.Tx) error {
		for _, param := range []string{"idle_in_transaction_session_timeout", "lock_timeout"} {
			var v string
			if err := tx.QueryRowContext(ctx, "SHOW "+param).Scan(&v); err != nil {
				return err
			}
			if v == "0" {
				t.Errorf("%s is 0 (unbounded) in a write transaction", param)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReview17RedactDBSSLPassword: RedactDB masks every password a
// PostgreSQL URL can carry, sslpassword (the client key's passphrase)
// included.
func TestReview17RedactDBSSLPassword(t *testing.T) {
	got := RedactDB("postgres://latch@db/latch?sslmode=verify-full&sslpassword=hunter2")
	if strings.Contains(got, "hunter2") {
		t.Fatalf("RedactDB leaves the sslpassword: %s", got)
	}
}

// TestReview17LimiterUnderRepeatableRead: the database limiter's upsert runs
// on its own, in the database's default isolation. Under REPEATABLE READ a
// request racing another on the same bucket (one IP behind a NAT, a brute
// force) meets a serialization failure, which the limiter takes for an
// outage: it refuses (fail closed) and logs that the database is
// unreachable. The sessions must run READ COMMITTED whatever the default.
func TestReview17LimiterUnderRepeatableRead(t *testing.T) {
	if !pgtest.Enabled() {
		t.Skip("PostgreSQL only (LATCH_TEST_DB=postgres)")
	}
	url := pgtest.Database(t)
	admin, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var name string
	if err := admin.QueryRow("SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("ALTER DATABASE " + name + " SET default_transaction_isolation = 'repeatable read'"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := openStore(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var logs syncBuffer
	l := newDBLimiter(st, "ip", perMinuteRate(600), newClock().Now, slog.New(slog.NewTextHandler(&logs, nil)))
	if ok, _ := l.allow("k"); !ok {
		t.Fatal("first call refused")
	}
	// Another request holds the bucket's row; ours waits for it, then
	// finds it changed.
	other, err := admin.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Exec("UPDATE rate_buckets SET full_ms = full_ms + 1 WHERE name = 'ip'"); err != nil {
		t.Fatal(err)
	}
	done := make(chan bool, 1)
	go func() { ok, _ := l.allow("k"); done <- ok }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var waiting int
		if err := admin.QueryRow("SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted").Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			other.Rollback()
			t.Fatal("the limiter never waited for the row")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, with a bound
	}
	if err := other.Commit(); err != nil {
		t.Fatal(err)
	}
	if ok := <-done; !ok {
		t.Fatalf("a bucket with 298 tokens refused a request that raced another:\n%s", logs.String())
	}
}
