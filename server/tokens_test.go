package server

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func decodePair(t *testing.T, r *resp) tokenPair {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	var p tokenPair
	if err := json.Unmarshal(r.Body, &p); err != nil || p.RefreshToken == "" || p.AccessToken == "" {
		t.Fatalf("bad token pair: %s", r.Body)
	}
	return p
}

func TestRefreshTokenShape(t *testing.T) {
	e := newEnv(t)
	e.register("alice", "alice@example.com")
	p := e.login("alice")
	if !strings.HasPrefix(p.RefreshToken, refreshPrefix) || len(p.RefreshToken) != len(refreshPrefix)+43 {
		t.Fatalf("refresh token %q: want %s + 43 base64url chars (256 bits)", p.RefreshToken, refreshPrefix)
	}
	// Stored only as a hash.
	var n int
	e.srv.st.db.QueryRow("SELECT count(*) FROM refresh_tokens WHERE hash = ?", []byte(p.RefreshToken)).Scan(&n)
	if n != 0 {
		t.Fatal("a refresh token is stored in the clear")
	}
	e.srv.st.db.QueryRow("SELECT count(*) FROM refresh_tokens WHERE hash = ?", hashToken(p.RefreshToken)).Scan(&n)
	if n != 1 {
		t.Fatal("the refresh token's hash is not stored")
	}
	if p.TokenType != "Bearer" || p.ExpiresIn != 900 || p.RefreshExpiresIn != int(DefaultRefreshTTL/time.Second) {
		t.Fatalf("pair = %+v", p)
	}
}

func TestRotation(t *testing.T) {
	e := newEnv(t)
	e.register("alice", "alice@example.com")
	p0 := e.login("alice")

	p1 := decodePair(t, e.refresh(p0.RefreshToken))
	if p1.RefreshToken == p0.RefreshToken {
		t.Fatal("refresh did not rotate the token")
	}
	if r := e.bearer("GET", "/auth/me", p1.AccessToken, nil); r.Status != http.StatusOK {
		t.Fatalf("new access token rejected: %d %s", r.Status, r.Body)
	}
	e.clock.Add(time.Minute) // past the grace window
	p2 := decodePair(t, e.refresh(p1.RefreshToken))
	if p2.RefreshToken == p1.RefreshToken {
		t.Fatal("second refresh did not rotate")
	}
	if got := e.srv.metrics.refreshes.get(refreshRotated); got != 2 {
		t.Fatalf("rotated = %d, want 2", got)
	}
}

func TestGraceRetryReturnsSameSuccessor(t *testing.T) {
	e := newEnv(t)
	e.register("alice", "alice@example.com")
	p0 := e.login("alice")
	p1 := decodePair(t, e.refresh(p0.RefreshToken))

	e.clock.Add(DefaultReuseGrace) // the edge of the window still counts
	again := decodePair(t, e.refresh(p0.RefreshToken))
	if again.RefreshToken != p1.RefreshToken {
		t.Fatal("a retry within the grace window must get the same successor")
	}
	if e.srv.metrics.refreshes.get(refreshGrace) != 1 {
		t.Fatal("grace retry not counted")
	}
	// The family is intact: the successor still rotates.
	decodePair(t, e.refresh(p1.RefreshToken))
}

func TestReuseRevokesFamily(t *testing.T) {
	cases := []struct {
		name  string
		setup func(e *env, p0, p1 tokenPair)
	}{
		{"after the grace window", func(e *env, p0, p1 tokenPair) { e.clock.Add(DefaultReuseGrace + time.Second) }},
		{"successor already used", func(e *env, p0, p1 tokenPair) { decodePair(t, e.refresh(p1.RefreshToken)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.register("alice", "alice@example.com")
			other := e.login("alice") // another session, which must survive
			p0 := e.login("alice")
			p1 := decodePair(t, e.refresh(p0.RefreshToken))
			tc.setup(e, p0, p1)

			r := e.refresh(p0.RefreshToken)
			if r.Status != http.StatusUnauthorized || r.problemType(t) != probTokenReused {
				t.Fatalf("reuse: %d %s", r.Status, r.Body)
			}
			// Every token of the family is dead, and so is its access token.
			r = e.refresh(p1.RefreshToken)
			if r.Status != http.StatusUnauthorized || r.problemType(t) != probInvalidRefresh {
				t.Fatalf("successor after reuse: %d %s", r.Status, r.Body)
			}
			if !strings.Contains(string(r.Body), "used twice") {
				t.Fatalf("the answer should say why the session ended: %s", r.Body)
			}
			if r := e.bearer("GET", "/auth/me", p1.AccessToken, nil); r.Status != http.StatusUnauthorized {
				t.Fatalf("access token of a revoked session: %d", r.Status)
			}
			decodePair(t, e.refresh(other.RefreshToken))
			if e.srv.metrics.refreshes.get(refreshReused) != 1 {
				t.Fatal("reuse not counted")
			}
		})
	}
}

func TestRefreshExpiry(t *testing.T) {
	idle := time.Hour
	sessionMax := 3 * time.Hour
	short := func(c *Config) { c.RefreshTTL, c.SessionMax = idle, sessionMax }

	t.Run("idle", func(t *testing.T) {
		e := newEnv(t, short)
		e.register("alice", "alice@example.com")
		p := e.login("alice")
		e.clock.Add(idle)
		r := e.refresh(p.RefreshToken)
		if r.Status != http.StatusUnauthorized || r.problemType(t) != probInvalidRefresh {
			t.Fatalf("idle-expired token: %d %s", r.Status, r.Body)
		}
	})
	t.Run("sliding", func(t *testing.T) {
		e := newEnv(t, short)
		e.register("alice", "alice@example.com")
		p := e.login("alice")
		// Used within each idle period, the session lives on…
		for range 2 {
			e.clock.Add(idle - time.Minute)
			p = decodePair(t, e.refresh(p.RefreshToken))
		}
		// …and the refresh lifetime is capped by the absolute end.
		e.clock.Add(idle - time.Minute) // 2h57m after login
		p = decodePair(t, e.refresh(p.RefreshToken))
		if p.RefreshExpiresIn != int((3 * time.Minute).Seconds()) {
			t.Fatalf("refresh_expires_in = %d, want the 180 s left of the session", p.RefreshExpiresIn)
		}
	})
	t.Run("absolute", func(t *testing.T) {
		e := newEnv(t, short)
		e.register("alice", "alice@example.com")
		p := e.login("alice")
		for range 3 {
			e.clock.Add(59 * time.Minute)
			p = decodePair(t, e.refresh(p.RefreshToken))
		}
		e.clock.Add(3 * time.Minute) // 3h00m: past the session's end
		r := e.refresh(p.RefreshToken)
		if r.Status != http.StatusUnauthorized || r.problemType(t) != probInvalidRefresh {
			t.Fatalf("token past session max: %d %s", r.Status, r.Body)
		}
	})
}

func TestRefreshBadTokens(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		body     string
		status   int
		wantType string
	}{
		{`{"refresh_token":"lrt_unknown"}`, 401, probInvalidRefresh},
		{`{"refresh_token":""}`, 400, probValidation},
		{`{}`, 400, probValidation},
		{`{"refresh_token":42}`, 400, probMalformed},
	}
	for _, tc := range cases {
		r := e.do("POST", "/auth/refresh", tc.body)
		if r.Status != tc.status || r.problemType(t) != tc.wantType {
			t.Errorf("%s: %d %s", tc.body, r.Status, r.Body)
		}
	}
}

// TestConcurrentRefresh presents one token from 50 goroutines at once against
// a file database: exactly one rotation happens, every answer carries the
// same successor, and the family stays intact.
func TestConcurrentRefresh(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DBPath = filepath.Join(t.TempDir(), "latch.db") })
	e.register("alice", "alice@example.com")
	p0 := e.login("alice")

	const n = 50
	var wg sync.WaitGroup
	start := make(chan struct{})
	results := make([]*resp, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = e.refresh(p0.RefreshToken)
		}()
	}
	close(start)
	wg.Wait()

	successors := map[string]int{}
	for i, r := range results {
		if r.Status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, r.Status, r.Body)
		}
		successors[decodePair(t, r).RefreshToken]++
	}
	if len(successors) != 1 {
		t.Fatalf("%d different successors, want 1", len(successors))
	}
	m := e.srv.metrics.refreshes
	if m.get(refreshRotated) != 1 || m.get(refreshGrace) != n-1 || m.get(refreshReused) != 0 {
		t.Fatalf("rotated=%d grace=%d reused=%d", m.get(refreshRotated), m.get(refreshGrace), m.get(refreshReused))
	}
	for s := range successors {
		decodePair(t, e.refresh(s)) // the family is intact
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	e.register("alice", "alice@example.com")
	p := e.login("alice")
	other := e.login("alice")
	for i := range 2 { // idempotent
		if r := e.do("POST", "/auth/logout", map[string]string{"refresh_token": p.RefreshToken}); r.Status != http.StatusNoContent {
			t.Fatalf("logout #%d: %d %s", i, r.Status, r.Body)
		}
	}
	if r := e.refresh(p.RefreshToken); r.Status != http.StatusUnauthorized || r.problemType(t) != probInvalidRefresh {
		t.Fatalf("refresh after logout: %d %s", r.Status, r.Body)
	}
	if r := e.bearer("GET", "/auth/me", p.AccessToken, nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("access token after logout: %d", r.Status)
	}
	if r := e.do("POST", "/auth/logout", map[string]string{"refresh_token": "lrt_nope"}); r.Status != http.StatusNoContent {
		t.Fatalf("logout with an unknown token: %d", r.Status)
	}
	decodePair(t, e.refresh(other.RefreshToken))
	if got := e.srv.metrics.logouts.get("revoked"); got != 1 {
		t.Fatalf("logouts revoked = %d", got)
	}
}

func TestSessions(t *testing.T) {
	e := newEnv(t)
	e.register("alice", "alice@example.com")
	e.register("bob", "bob@example.com")
	a1 := e.login("alice")
	e.clock.Add(time.Second)
	r := e.do("POST", "/auth/login", map[string]string{"identifier": "alice", "password": goodPassword}, "User-Agent", "second-device/1.0")
	a2 := decodePair(t, r)
	b := e.login("bob")

	var list struct{ Sessions []sessionInfo }
	r = e.bearer("GET", "/auth/sessions", a1.AccessToken, nil)
	if err := json.Unmarshal(r.Body, &list); err != nil || len(list.Sessions) != 2 {
		t.Fatalf("sessions: %d %s", r.Status, r.Body)
	}
	var current, second sessionInfo
	for _, s := range list.Sessions {
		if s.Current {
			current = s
		} else {
			second = s
		}
	}
	if current.ID == "" || second.UserAgent != "second-device/1.0" || second.ExpiresAt.IsZero() {
		t.Fatalf("sessions = %+v", list.Sessions)
	}

	// Bob cannot revoke Alice's session.
	if r := e.bearer("DELETE", "/auth/sessions/"+second.ID, b.AccessToken, nil); r.Status != http.StatusNotFound || r.problemType(t) != probNotFound {
		t.Fatalf("revoke someone else's session: %d %s", r.Status, r.Body)
	}
	if r := e.bearer("DELETE", "/auth/sessions/"+second.ID, a1.AccessToken, nil); r.Status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if r := e.refresh(a2.RefreshToken); r.Status != http.StatusUnauthorized {
		t.Fatalf("refresh of a revoked session: %d", r.Status)
	}
	if r := e.bearer("GET", "/auth/me", a2.AccessToken, nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("access token of a revoked session: %d", r.Status)
	}
	if r := e.bearer("DELETE", "/auth/sessions/"+second.ID, a1.AccessToken, nil); r.Status != http.StatusNotFound {
		t.Fatalf("revoking twice: %d", r.Status)
	}
	r = e.bearer("GET", "/auth/sessions", a1.AccessToken, nil)
	if json.Unmarshal(r.Body, &list); len(list.Sessions) != 1 || !list.Sessions[0].Current {
		t.Fatalf("after revoke: %s", r.Body)
	}
}

func TestSweep(t *testing.T) {
	e := newEnv(t)
	e.register("alice", "alice@example.com")
	p0 := e.login("alice")
	decodePair(t, e.refresh(p0.RefreshToken))
	gone := e.login("alice")
	e.do("POST", "/auth/logout", map[string]string{"refresh_token": gone.RefreshToken})

	e.clock.Add(DefaultReuseGrace + time.Second)
	if err := e.srv.sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	var sealed int
	e.srv.st.db.QueryRow("SELECT count(*) FROM refresh_tokens WHERE successor_enc IS NOT NULL").Scan(&sealed)
	if sealed != 0 {
		t.Fatalf("%d sealed successors outlived the grace window", sealed)
	}
	// A reuse is still recognised after the sweep.
	if r := e.refresh(p0.RefreshToken); r.problemType(t) != probTokenReused {
		t.Fatalf("reuse after sweep: %s", r.Body)
	}

	e.clock.Add(25 * time.Hour)
	if err := e.srv.sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	var sessions int
	e.srv.st.db.QueryRow("SELECT count(*) FROM sessions").Scan(&sessions)
	if sessions != 0 {
		t.Fatalf("%d ended sessions kept after a day", sessions)
	}
}
