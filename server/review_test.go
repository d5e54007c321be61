package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Regression tests for defects found in review.

func TestGraceRetryAfterSessionEnd(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SessionMax = time.Hour })
	e.register("alice", "alice@example.com")
	p0 := e.login("alice")
	e.clock.Add(time.Hour - 2*time.Second)
	decodePair(t, e.refresh(p0.RefreshToken))
	e.clock.Add(5 * time.Second) // within the grace window, past the session's end
	r := e.refresh(p0.RefreshToken)
	if r.Status != http.StatusUnauthorized || r.problemType(t) != probInvalidRefresh {
		t.Fatalf("grace retry after the session ended: %d %s", r.Status, r.Body)
	}
}

// TestGraceWindowIsNotTruncated: a rotation late in a second, retried just
// inside the window, still gets the successor.
func TestGraceWindowIsNotTruncated(t *testing.T) {
	e := newEnv(t)
	e.clock.Add(900 * time.Millisecond)
	e.register("alice", "alice@example.com")
	p0 := e.login("alice")
	p1 := decodePair(t, e.refresh(p0.RefreshToken))
	e.clock.Add(DefaultReuseGrace - 500*time.Millisecond)
	if again := decodePair(t, e.refresh(p0.RefreshToken)); again.RefreshToken != p1.RefreshToken {
		t.Fatal("retry inside the window did not get the successor")
	}
	e.clock.Add(501 * time.Millisecond) // 10.001 s after the rotation
	if r := e.refresh(p0.RefreshToken); r.problemType(t) != probTokenReused {
		t.Fatalf("retry after the window: %s", r.Body)
	}
}

func TestNoGrace(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ReuseGrace = -1 })
	e.register("alice", "alice@example.com")
	p0 := e.login("alice")
	decodePair(t, e.refresh(p0.RefreshToken))
	if r := e.refresh(p0.RefreshToken); r.problemType(t) != probTokenReused {
		t.Fatalf("an immediate retry with grace off: %s", r.Body)
	}
	if got := e.do("GET", "/auth/config", nil).json(t)["reuse_grace"]; got != float64(0) {
		t.Fatalf("reuse_grace = %v", got)
	}
}

func TestClientIPBehindProxy(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.BehindProxy = true })
	cases := []struct {
		lines []string
		want  string
	}{
		{nil, "192.0.2.9"},
		{[]string{"1.2.3.4"}, "1.2.3.4"},
		{[]string{"6.6.6.6, 1.2.3.4"}, "1.2.3.4"},
		{[]string{"6.6.6.6", "1.2.3.4"}, "1.2.3.4"}, // the proxy added its own line
		{[]string{"1.2.3.4,"}, "192.0.2.9"},
		{[]string{"not-an-ip"}, "192.0.2.9"},
		{[]string{"2001:db8::1"}, "2001:db8::1"},
	}
	for _, tc := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "192.0.2.9:4711"
		for _, l := range tc.lines {
			r.Header.Add("X-Forwarded-For", l)
		}
		if got := e.srv.clientIP(r); got != tc.want {
			t.Errorf("%q: %s, want %s", tc.lines, got, tc.want)
		}
	}
}

func TestLimiterKeysAreBounded(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RateAccount = 600 })
	huge := strings.Repeat("x", 60<<10)
	e.do("POST", "/auth/login", map[string]string{"identifier": huge, "password": "p"})
	e.do("POST", "/auth/register", map[string]string{"username": "u", "email": huge, "password": "p"})
	backoffKeys, acctKeys := limitKeyLens(t, e.srv)
	for _, n := range backoffKeys {
		if n != 16 {
			t.Fatalf("backoff key of %d bytes", n)
		}
	}
	for _, n := range acctKeys {
		if n != 16 {
			t.Fatalf("limiter key of %d bytes", n)
		}
	}
	if len(backoffKeys) == 0 || len(acctKeys) == 0 {
		t.Fatal("nothing was recorded: the test proves nothing")
	}
}

func TestUniqueViolationNamesTheColumn(t *testing.T) {
	e := newEnv(t)
	e.register("alice", "alice@example.com")
	for col, q := range map[string]string{
		"username": "INSERT INTO users (username, email, password_hash, created_at, updated_at) VALUES ('ALICE', 'x@example.com', '', 0, 0)",
		"email":    "INSERT INTO users (username, email, password_hash, created_at, updated_at) VALUES ('bob', 'Alice@example.com', '', 0, 0)",
	} {
		_, err := e.srv.st.db.Exec(q)
		if got := e.srv.st.uniqueViolation(err); got != col {
			t.Errorf("uniqueViolation(%v) = %q, want %q", err, got, col)
		}
	}
}

func TestConcurrentMigrations(t *testing.T) {
	for round := range 5 {
		path := filepath.Join(t.TempDir(), "latch.db")
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, err := openStore(context.Background(), testDB(t, path))
				if err == nil {
					st.Close()
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}

// TestRotationAcrossProcesses presents one token to two servers sharing a
// database file, as two processes would, with no mutex in common. Server A
// pauses inside its transaction, after reading the token, until server B has
// read it too (bounded). BEGIN IMMEDIATE keeps B out until A commits, so A's
// wait runs out and B then sees a used token: one rotation, one successor.
// With deferred transactions both would read the unused token.
func TestRotationAcrossProcesses(t *testing.T) {
	db := filepath.Join(t.TempDir(), "latch.db")
	a := newEnv(t, func(c *Config) { c.DBPath = db })
	b := newEnv(t, func(c *Config) { c.DBPath = db })
	b.srv.now = a.clock.Now
	a.register("alice", "alice@example.com")
	p0 := a.login("alice")

	aRead, bRead := make(chan struct{}), make(chan struct{})
	var aOnce, bOnce sync.Once
	a.srv.afterTokenRead = func() {
		aOnce.Do(func() {
			close(aRead)
			select {
			case <-bRead:
			case <-time.After(500 * time.Millisecond):
			}
		})
	}
	b.srv.afterTokenRead = func() { bOnce.Do(func() { close(bRead) }) }

	results := make(chan *resp, 2)
	go func() { results <- a.refresh(p0.RefreshToken) }()
	<-aRead
	go func() { results <- b.refresh(p0.RefreshToken) }()
	r1, r2 := <-results, <-results
	if r1.Status != 200 || r2.Status != 200 {
		t.Fatalf("answers %d %s / %d %s", r1.Status, r1.Body, r2.Status, r2.Body)
	}
	if decodePair(t, r1).RefreshToken != decodePair(t, r2).RefreshToken {
		t.Fatal("two different successors: the token rotated twice")
	}
	if got := a.srv.metrics.refreshes.get(refreshRotated) + b.srv.metrics.refreshes.get(refreshRotated); got != 1 {
		t.Fatalf("%d rotations", got)
	}
}

func TestBcryptLongPasswordNotRehashed(t *testing.T) {
	e := newEnv(t)
	real := strings.Repeat("p", 72) + "-tail-of-the-real-password"
	h, _ := bcrypt.GenerateFromPassword([]byte(real[:72]), bcrypt.MinCost)
	e.srv.st.db.Exec(`INSERT INTO users (username, email, password_hash, created_at, updated_at)
		VALUES ('legacy', 'legacy@example.com', ?, 0, 0)`, string(h))
	other := real[:72] + "-something-else"
	if r := e.do("POST", "/auth/login", map[string]string{"identifier": "legacy", "password": other}); r.Status != 200 {
		t.Fatalf("bcrypt compares 72 bytes: %d", r.Status)
	}
	var stored string
	e.srv.st.db.QueryRow("SELECT password_hash FROM users WHERE username = 'legacy'").Scan(&stored)
	if !isBcrypt(stored) {
		t.Fatal("a >72-byte password was rehashed from a bcrypt hash that never checked its tail")
	}
}

func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	e := newEnv(t)
	e.register("alice", "alice@example.com")
	p := e.login("alice")
	if r := e.do("GET", "/auth/me", nil, "Authorization", "bearer "+p.AccessToken); r.Status != 200 {
		t.Fatalf("lower-case scheme: %d", r.Status)
	}
	if r := e.do("GET", "/auth/me", nil, "Authorization", "Basic "+p.AccessToken); r.Status != 401 {
		t.Fatalf("other scheme: %d", r.Status)
	}
}

// JWT times are whole seconds: an access token issued at x.9 s with a 1 s
// lifetime must not expire at x+1 s, 0.1 s later, while the client was told
// expires_in 1.
func TestAccessExpiryRoundsUp(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AccessTTL = time.Second })
	e.clock.Add(900 * time.Millisecond)
	issued := e.clock.Now()
	raw, err := e.srv.issueAccess(1, "sid", false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.srv.verifyAccess(raw)
	if err != nil {
		t.Fatal(err)
	}
	if exp := c.Expiry.Time(); exp.Before(issued.Add(time.Second)) || !exp.Before(issued.Add(2*time.Second)) {
		t.Fatalf("exp = %s for a 1 s token issued at %s", exp, issued)
	}
	if got := ceilSecond(issued.Truncate(time.Second)); !got.Equal(issued.Truncate(time.Second)) {
		t.Fatalf("a whole second moved: %s", got)
	}
}
