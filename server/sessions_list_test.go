package server

import (
	"encoding/json"
	"testing"
	"time"
)

// TestSessionListEnds: GET /auth/sessions lists a session until the earlier
// of its absolute end and its newest refresh token's idle end, and not at
// all once that has passed or no unused refresh token is left. The end is
// computed in SQL written once for SQLite and PostgreSQL (no scalar min()
// there), so this runs on both.
func TestSessionListEnds(t *testing.T) {
	const idle, maxAge = 10 * time.Minute, 24 * time.Hour
	for _, tc := range []struct {
		name    string
		advance time.Duration // after the other session's login
		spend   bool          // mark every refresh token of the other session used
		listed  bool
	}{
		{"fresh: ends at the idle end", 0, false, true},
		{"idled out", idle, false, false},
		{"no unused refresh token", 0, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.RefreshTTL, c.SessionMax = idle, maxAge })
			e.register("alice", "alice@example.com")
			start := e.clock.Now()
			e.do("POST", "/auth/login", map[string]string{"identifier": "alice", "password": goodPassword},
				"User-Agent", "other/1.0")
			e.clock.Add(tc.advance)
			me := e.login("alice") // the caller's own session, always open
			if tc.spend {
				if _, err := e.srv.st.db.Exec(`UPDATE refresh_tokens SET used_at_ms = 1 WHERE session_id IN
					(SELECT id FROM sessions WHERE user_agent = 'other/1.0')`); err != nil {
					t.Fatal(err)
				}
			}
			r := e.bearer("GET", "/auth/sessions", me.AccessToken, nil)
			var list struct{ Sessions []sessionInfo }
			if err := json.Unmarshal(r.Body, &list); err != nil || r.Status != 200 {
				t.Fatalf("sessions: %d %s", r.Status, r.Body)
			}
			var other *sessionInfo
			for i, s := range list.Sessions {
				if s.UserAgent == "other/1.0" {
					other = &list.Sessions[i]
				}
			}
			if (other != nil) != tc.listed {
				t.Fatalf("other session listed: %v, want %v: %s", other != nil, tc.listed, r.Body)
			}
			if other != nil && !other.ExpiresAt.Equal(start.Add(idle).Truncate(time.Second)) {
				t.Fatalf("other session ends %v, want its idle end %v", other.ExpiresAt, start.Add(idle))
			}
		})
	}
}
