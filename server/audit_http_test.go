package server

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestEventsPages walks /auth/events a page at a time: the caller's own
// events only, newest first, each once.
func TestEventsPages(t *testing.T) {
	e := newEnv(t)
	e.register("alice", "alice@example.com")
	e.register("bob", "bob@example.com")
	e.login("bob")
	var p tokenPair
	for range 6 {
		p = e.login("alice")
	}
	const want = 7 // signup and 6 logins
	seen := map[int64]bool{}
	last := int64(1 << 62)
	before := ""
	pages := 0
	for range 10 {
		r := e.bearer("GET", "/auth/events?limit=3&before="+before, p.AccessToken, nil)
		if r.Status != 200 {
			t.Fatalf("events: %d %s", r.Status, r.Body)
		}
		var page struct {
			Events []eventJSON
			Next   *string
		}
		if err := json.Unmarshal(r.Body, &page); err != nil || page.Next == nil {
			t.Fatalf("page: %v %s", err, r.Body)
		}
		pages++
		for _, ev := range page.Events {
			if ev.Username != "alice" || ev.ID >= last || seen[ev.ID] {
				t.Fatalf("event %+v out of place (last id %d)", ev, last)
			}
			seen[ev.ID], last = true, ev.ID
		}
		if before = *page.Next; before == "" {
			break
		}
		if len(page.Events) != 3 {
			t.Fatalf("a page of %d with a next", len(page.Events))
		}
	}
	if len(seen) != want || pages != 3 {
		t.Fatalf("%d events in %d pages, want %d in 3", len(seen), pages, want)
	}

	for _, q := range []string{"limit=0", "limit=201", "limit=x", "before=x", "before=-1"} {
		if r := e.bearer("GET", "/auth/events?"+q, p.AccessToken, nil); r.Status != 400 || r.problemType(t) != probValidation {
			t.Errorf("%s: %d %s, want 400 validation", q, r.Status, r.Body)
		}
	}
	if r := e.do("GET", "/auth/events", nil); r.Status != 401 {
		t.Errorf("no token: %d", r.Status)
	}
}

// TestOwnEventsHideTheActorsClient: an admin's action on an account is in
// the account's own events, by name, but the admin's address and user agent
// are only for audit:read.
func TestOwnEventsHideTheActorsClient(t *testing.T) {
	e := newEnv(t)
	_, admin := e.userWithRoles("admin", roleViewer, roleAdmin)
	aliceID, _ := e.userWithRoles("alice", roleViewer)
	r := e.do("POST", "/admin/users/"+strconv.FormatInt(aliceID, 10)+"/lock", nil,
		"Authorization", "Bearer "+admin.AccessToken, "User-Agent", "admin-console/1")
	if r.Status != 204 {
		t.Fatalf("lock: %d %s", r.Status, r.Body)
	}
	e.do("POST", "/admin/users/"+strconv.FormatInt(aliceID, 10)+"/unlock", nil,
		"Authorization", "Bearer "+admin.AccessToken, "User-Agent", "admin-console/1")
	alice := e.login("alice")
	page := func(path, token string) []eventJSON {
		t.Helper()
		r := e.bearer("GET", path, token, nil)
		var p struct{ Events []eventJSON }
		if r.Status != 200 || json.Unmarshal(r.Body, &p) != nil {
			t.Fatalf("%s: %d %s", path, r.Status, r.Body)
		}
		return p.Events
	}
	var own, all eventJSON
	for _, ev := range page("/auth/events", alice.AccessToken) {
		if ev.Type == evAccountLocked {
			own = ev
		}
	}
	for _, ev := range page("/admin/events?type="+evAccountLocked, admin.AccessToken) {
		all = ev
	}
	if own.ActorName != "admin" || own.IP != "" || own.UserAgent != "" {
		t.Errorf("alice's own account.locked event: %+v, want the actor's name without its ip and user agent", own)
	}
	if all.UserAgent != "admin-console/1" || all.IP == "" {
		t.Errorf("/admin/events account.locked: %+v, want the admin's ip and user agent", all)
	}
}

// TestAdminEventsFilters runs /admin/events' handler (the audit:read gate is
// the permission matrix's) with each filter.
func TestAdminEventsFilters(t *testing.T) {
	e := newEnv(t)
	t0 := e.clock.Now()
	e.register("alice", "alice@example.com") // t0
	e.clock.Add(time.Hour)
	e.register("bob", "bob@example.com") // t0+1h
	e.clock.Add(time.Hour)
	e.login("alice") // t0+2h
	e.clock.Add(time.Hour)
	e.login("bob") // t0+3h
	e.do("POST", "/auth/login", map[string]string{"identifier": "bob", "password": "not it at all"})
	var bob int64
	e.srv.st.db.QueryRow("SELECT id FROM users WHERE username = 'bob'").Scan(&bob)
	at := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }

	get := func(q url.Values) (int, []string, string) {
		rec := httptest.NewRecorder()
		e.srv.handleAdminEvents(rec, httptest.NewRequest("GET", "/admin/events?"+q.Encode(), nil), nil)
		var page struct {
			Events []eventJSON
			Next   string
		}
		json.Unmarshal(rec.Body.Bytes(), &page)
		var got []string
		for _, ev := range page.Events {
			got = append(got, ev.Username+":"+ev.Type)
		}
		return rec.Code, got, page.Next
	}
	for _, tc := range []struct {
		name   string
		q      url.Values
		status int
		want   string
	}{
		{"all", url.Values{}, 200, "bob:login.failed bob:login.ok alice:login.ok bob:signup alice:signup"},
		{"user by name", url.Values{"user": {"bob"}}, 200, "bob:login.failed bob:login.ok bob:signup"},
		{"user by id", url.Values{"user": {strconv.FormatInt(bob, 10)}}, 200, "bob:login.failed bob:login.ok bob:signup"},
		{"unknown user", url.Values{"user": {"carol"}}, 200, ""},
		{"type", url.Values{"type": {evLoginOK}}, 200, "bob:login.ok alice:login.ok"},
		{"since", url.Values{"since": {at(2 * time.Hour)}}, 200, "bob:login.failed bob:login.ok alice:login.ok"},
		{"until", url.Values{"until": {at(2 * time.Hour)}}, 200, "bob:signup alice:signup"},
		{"window and type", url.Values{"since": {at(time.Hour)}, "until": {at(3 * time.Hour)}, "type": {evLoginOK}}, 200, "alice:login.ok"},
		{"user and type", url.Values{"user": {"alice"}, "type": {evSignup}}, 200, "alice:signup"},
		{"limit", url.Values{"limit": {"2"}}, 200, "bob:login.failed bob:login.ok"},
		{"bad since", url.Values{"since": {"yesterday"}}, 400, ""},
		{"bad until", url.Values{"until": {"2026-13-01"}}, 400, ""},
		{"bad limit", url.Values{"limit": {"500"}}, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, got, _ := get(tc.q)
			if status != tc.status || strings.Join(got, " ") != tc.want {
				t.Fatalf("%d %q, want %d %q", status, strings.Join(got, " "), tc.status, tc.want)
			}
		})
	}
	// Pages with a filter: the cursor keeps it.
	_, first, next := get(url.Values{"user": {"bob"}, "limit": {"2"}})
	_, second, last := get(url.Values{"user": {"bob"}, "limit": {"2"}, "before": {next}})
	if strings.Join(first, " ") != "bob:login.failed bob:login.ok" || strings.Join(second, " ") != "bob:signup" || last != "" {
		t.Fatalf("pages %v %v next %q", first, second, last)
	}
}

// TestRequestID: every response carries X-Request-Id, the caller's when it
// is sane, else a random one.
func TestRequestID(t *testing.T) {
	e := newEnv(t)
	random := regexp.MustCompile(`^[0-9a-f]{24}$`)
	for _, tc := range []struct {
		name, path, sent string
		keep             bool
	}{
		{"none", "/healthz", "", false},
		{"sane", "/healthz", "abc-123.DEF_4:5", true},
		{"64 chars", "/healthz", strings.Repeat("a", 64), true},
		{"65 chars", "/healthz", strings.Repeat("a", 65), false},
		{"space", "/healthz", "a b", false},
		{"quote", "/healthz", `a"b`, false},
		{"a 404", "/no/such/path", "req-404", true},
		{"a problem", "/auth/me", "req-401", true},
		{"the provider", "/.well-known/openid-configuration", "req-oidc", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h []string
			if tc.sent != "" {
				h = []string{"X-Request-Id", tc.sent}
			}
			got := e.do("GET", tc.path, nil, h...).Header.Get("X-Request-Id")
			if tc.keep && got != tc.sent || !tc.keep && !random.MatchString(got) {
				t.Fatalf("sent %q, got %q (keep %v)", tc.sent, got, tc.keep)
			}
		})
	}
}
