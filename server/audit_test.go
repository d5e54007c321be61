package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// auditCall sends a request as the audit tests do: with a User-Agent and an
// X-Request-Id named after rid, so that each event can be traced to it.
func (e *env) auditCall(method, path, rid, access string, body any) *resp {
	e.t.Helper()
	h := []string{"User-Agent", "audit-test/" + rid, "X-Request-Id", rid}
	if access != "" {
		h = append(h, "Authorization", "Bearer "+access)
	}
	r := e.do(method, path, body, h...)
	if got := r.Header.Get("X-Request-Id"); got != rid {
		e.t.Fatalf("%s %s: X-Request-Id %q, want %q", method, path, got, rid)
	}
	return r
}

// auditRows reads the whole audit table, oldest first.
func auditRows(t *testing.T, e *env) []eventJSON {
	t.Helper()
	var all []eventJSON
	before := ""
	for range 100 {
		rec := httptest.NewRecorder()
		e.srv.listEvents(rec, httptest.NewRequest("GET", "/", nil), eventFilter{limit: maxEventPage, before: atoi(before)})
		var page struct {
			Events []eventJSON
			Next   string
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
			t.Fatalf("events: %v: %s", err, rec.Body)
		}
		all = append(page.Events, all...)
		if before = page.Next; before == "" {
			break
		}
	}
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	return all
}

func atoi(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }

// streamed parses the --audit-log stream.
func streamed(t *testing.T, out string) []eventJSON {
	t.Helper()
	var evs []eventJSON
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var ev eventJSON
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("stream line %q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// sessionOf is the id of the session an access token belongs to.
func sessionOf(t *testing.T, e *env, access string) string {
	t.Helper()
	c, err := e.srv.verifyAccess(access)
	if err != nil {
		t.Fatal(err)
	}
	return c.SessionID
}

// TestAuditEveryEvent drives each event the account API records and checks
// its row (account, client IP, user agent, session and request id), that the
// stream holds the same events, and that no secret the test used appears in
// any column or in the stream.
func TestAuditEveryEvent(t *testing.T) {
	stream := &syncBuffer{}
	e := newEnv(t, func(c *Config) { c.AuditLog = stream })
	mb := e.mailbox()
	const wrongPassword = "wrong horse battery staple"
	secrets := []string{goodPassword, wrongPassword, newPassword}
	pair := func(r *resp) tokenPair {
		p := decodePair(t, r)
		secrets = append(secrets, p.AccessToken, p.RefreshToken)
		return p
	}
	creds := func(pw string) map[string]string { return map[string]string{"identifier": "alice", "password": pw} }

	type want struct{ rid, typ, sid, detail string }
	var wants []want

	if r := e.auditCall("POST", "/auth/register", "r-signup", "", map[string]string{
		"username": "alice", "email": "alice@example.com", "password": goodPassword}); r.Status != 201 {
		t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	wants = append(wants, want{"r-signup", evSignup, "", ""})

	vtok := mb.token(t, purposeVerify, "alice@example.com")
	secrets = append(secrets, vtok)
	if r := e.auditCall("POST", "/auth/email/verify", "r-verify", "", map[string]string{"token": vtok}); r.Status != 200 {
		t.Fatalf("verify: %d %s", r.Status, r.Body)
	}
	wants = append(wants, want{"r-verify", evEmailVerified, "", ""})

	p1 := pair(e.auditCall("POST", "/auth/login", "r-login1", "", creds(goodPassword)))
	sid1 := sessionOf(t, e, p1.AccessToken)
	wants = append(wants, want{"r-login1", evLoginOK, sid1, "factor=password"})

	if r := e.auditCall("POST", "/auth/login", "r-fail", "", creds(wrongPassword)); r.Status != 401 {
		t.Fatalf("wrong password: %d %s", r.Status, r.Body)
	}
	wants = append(wants, want{"r-fail", evLoginFailed, "", "reason=bad_credentials"})

	// A rotation, then the used token again past the grace window.
	pair(e.auditCall("POST", "/auth/refresh", "r-rotate", "", map[string]string{"refresh_token": p1.RefreshToken}))
	e.clock.Add(11 * time.Second)
	if r := e.auditCall("POST", "/auth/refresh", "r-reuse", "", map[string]string{"refresh_token": p1.RefreshToken}); r.Status != 401 {
		t.Fatalf("reuse: %d %s", r.Status, r.Body)
	}
	wants = append(wants, want{"r-reuse", evRefreshReuse, sid1, ""})

	p2 := pair(e.auditCall("POST", "/auth/login", "r-login2", "", creds(goodPassword)))
	p3 := pair(e.auditCall("POST", "/auth/login", "r-login3", "", creds(goodPassword)))
	sid2, sid3 := sessionOf(t, e, p2.AccessToken), sessionOf(t, e, p3.AccessToken)
	wants = append(wants, want{"r-login2", evLoginOK, sid2, ""}, want{"r-login3", evLoginOK, sid3, ""})
	if r := e.auditCall("DELETE", "/auth/sessions/"+sid3, "r-revoke", p2.AccessToken, nil); r.Status != 204 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	wants = append(wants, want{"r-revoke", evSessionRevoked, sid3, "by_session=" + sid2})

	if r := e.auditCall("POST", "/auth/password", "r-passwd", p2.AccessToken, map[string]string{
		"current_password": goodPassword, "new_password": newPassword}); r.Status != 204 && r.Status != 200 {
		t.Fatalf("password: %d %s", r.Status, r.Body)
	}
	wants = append(wants, want{"r-passwd", evPasswordChanged, sid2, ""})

	// MFA: a wrong then a right code to turn it on; at login a wrong then a
	// right one.
	secret := e.setup(p2.AccessToken)
	secrets = append(secrets, secret)
	wrong := totpCode(t, secret, e.clock.Now().Add(time.Hour))
	secrets = append(secrets, wrong)
	if r := e.auditCall("POST", "/auth/mfa/enable", "r-mfa-enable-bad", p2.AccessToken, map[string]string{"code": wrong}); r.Status != 401 {
		t.Fatalf("enable with a wrong code: %d %s", r.Status, r.Body)
	}
	wants = append(wants, want{"r-mfa-enable-bad", evMFAFailed, sid2, "step=account"})
	code := totpCode(t, secret, e.clock.Now())
	secrets = append(secrets, code)
	backup := backupCodes(t, e.auditCall("POST", "/auth/mfa/enable", "r-mfa-enable", p2.AccessToken, map[string]string{"code": code}))
	secrets = append(secrets, backup...)
	wants = append(wants, want{"r-mfa-enable", evMFAOK, sid2, "step=account"})

	r := e.auditCall("POST", "/auth/login", "r-challenge", "", creds(newPassword))
	mfaTok, _ := r.json(t)["mfa_token"].(string)
	if mfaTok == "" {
		t.Fatalf("login with MFA: %d %s", r.Status, r.Body)
	}
	secrets = append(secrets, mfaTok)
	if r := e.auditCall("POST", "/auth/mfa/verify", "r-mfa-bad", "", map[string]string{"mfa_token": mfaTok, "code": wrong}); r.Status != 401 {
		t.Fatalf("verify a wrong code: %d %s", r.Status, r.Body)
	}
	wants = append(wants, want{"r-mfa-bad", evMFAFailed, "", "step=login"})
	e.clock.Add(30 * time.Second)
	code = totpCode(t, secret, e.clock.Now())
	secrets = append(secrets, code)
	p4 := pair(e.auditCall("POST", "/auth/mfa/verify", "r-mfa-ok", "", map[string]string{"mfa_token": mfaTok, "code": code}))
	sid4 := sessionOf(t, e, p4.AccessToken)
	wants = append(wants, want{"r-mfa-ok", evMFAOK, "", "step=login"}, want{"r-mfa-ok", evLoginOK, sid4, "factor=password+mfa"})

	if r := e.auditCall("POST", "/auth/logout", "r-logout", "", map[string]string{"refresh_token": p4.RefreshToken}); r.Status != 204 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	wants = append(wants, want{"r-logout", evLogout, sid4, ""})

	e.forgot("alice")
	rtok := mb.token(t, purposeReset, "alice@example.com")
	secrets = append(secrets, rtok)
	if r := e.auditCall("POST", "/auth/password/reset", "r-reset", "", map[string]string{
		"token": rtok, "new_password": goodPassword, "code": backup[0]}); r.Status != 204 {
		t.Fatalf("reset: %d %s", r.Status, r.Body)
	}
	wants = append(wants, want{"r-reset", evPasswordReset, "", ""})

	if r := e.auditCall("POST", "/auth/login", "r-unknown", "", map[string]string{"identifier": "nobody", "password": goodPassword}); r.Status != 401 {
		t.Fatalf("unknown user: %d %s", r.Status, r.Body)
	}

	rows := auditRows(t, e)
	var uid int64
	if err := e.srv.st.db.QueryRow("SELECT id FROM users WHERE username = 'alice'").Scan(&uid); err != nil {
		t.Fatal(err)
	}
	for _, w := range wants {
		t.Run(w.rid+"/"+w.typ, func(t *testing.T) {
			var ev *eventJSON
			for i := range rows {
				if rows[i].RequestID == w.rid && rows[i].Type == w.typ {
					ev = &rows[i]
				}
			}
			if ev == nil {
				t.Fatalf("no %s event for request %s", w.typ, w.rid)
			}
			if ev.UserID != uid || ev.Username != "alice" || ev.IP != "127.0.0.1" || ev.UserAgent != "audit-test/"+w.rid {
				t.Errorf("event %+v: want alice (%d), 127.0.0.1, audit-test/%s", *ev, uid, w.rid)
			}
			if w.sid != "" && ev.SessionID != w.sid {
				t.Errorf("session %q, want %q", ev.SessionID, w.sid)
			}
			if k, v, ok := strings.Cut(w.detail, "="); ok && ev.Detail[k] != v {
				t.Errorf("detail %v, want %s", ev.Detail, w.detail)
			}
			if ev.Time.IsZero() || ev.ID == 0 {
				t.Errorf("no time or id: %+v", *ev)
			}
		})
	}
	// The unknown name: an event with no account and no name (users type
	// passwords into that field).
	var unknown []eventJSON
	for _, ev := range rows {
		if ev.RequestID == "r-unknown" {
			unknown = append(unknown, ev)
		}
	}
	if len(unknown) != 1 || unknown[0].UserID != 0 || unknown[0].Username != "" || unknown[0].Detail["reason"] != "unknown_account" {
		t.Errorf("unknown user's failure: %+v", unknown)
	}

	// The stream holds exactly the table's events.
	st := streamed(t, stream.String())
	if len(st) != len(rows) {
		t.Fatalf("%d events streamed, %d in the table", len(st), len(rows))
	}
	for i := range rows {
		a, _ := json.Marshal(rows[i])
		b, _ := json.Marshal(st[i])
		if string(a) != string(b) {
			t.Errorf("event %d: table %s, stream %s", i, a, b)
		}
	}

	// No secret anywhere: every column of every row as text, and the stream.
	texts := auditColumns(t, e)
	texts = append(texts, stream.String())
	for _, s := range secrets {
		if s == "" {
			t.Fatal("an empty secret")
		}
		for _, txt := range texts {
			if i := strings.Index(txt, s); i >= 0 {
				t.Errorf("secret %q found in audit data: …%s…", s, txt[max(i-60, 0):min(i+len(s)+20, len(txt))])
			}
		}
	}
}

// auditColumns is every column of every audit row, as text, except the
// numbers (ids, times), which a 6-digit code could match by chance.
func auditColumns(t *testing.T, e *env) []string {
	t.Helper()
	rows, err := e.srv.st.db.Query("SELECT * FROM audit_events")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			switch v.(type) {
			case int64, nil:
				if !strings.HasSuffix(cols[i], "id") && cols[i] != "time_ms" {
					out = append(out, fmt.Sprint(v))
				}
			default:
				out = append(out, fmt.Sprintf("%s", v))
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no audit rows")
	}
	return out
}

// TestAuditSameTransaction: a change whose transaction fails leaves no
// event (in the table or the stream), and an event that cannot be written
// fails its change.
func TestAuditSameTransaction(t *testing.T) {
	stream := &syncBuffer{}
	e := newEnv(t, func(c *Config) { c.AuditLog = stream })
	e.register("alice", "alice@example.com")
	p := e.loginAs("alice", "curl/8")
	db := e.srv.st.db

	// The password change queues its notice last, after the event: make
	// that fail.
	undo := failInserts(t, e, "outbox")
	r := e.auditCall("POST", "/auth/password", "r-passwd", p.AccessToken,
		map[string]string{"current_password": goodPassword, "new_password": newPassword})
	undo()
	if r.Status != 500 {
		t.Fatalf("password change with a failing notice: %d %s", r.Status, r.Body)
	}
	for _, ev := range auditRows(t, e) {
		if ev.Type == evPasswordChanged {
			t.Fatalf("the failed change left its event: %+v", ev)
		}
	}
	if strings.Contains(stream.String(), evPasswordChanged) {
		t.Fatalf("the failed change was streamed: %s", stream.String())
	}
	e.loginAs("alice", "curl/8") // the old password still works

	// The event fails: the login must not start a session.
	var before int
	db.QueryRow("SELECT count(*) FROM sessions").Scan(&before)
	undo = failInserts(t, e, "audit_events")
	r = e.do("POST", "/auth/login", map[string]string{"identifier": "alice", "password": goodPassword}, "User-Agent", "curl/8")
	undo()
	var after int
	db.QueryRow("SELECT count(*) FROM sessions").Scan(&after)
	if r.Status != 500 || after != before {
		t.Fatalf("login with a failing audit insert: %d, sessions %d -> %d", r.Status, before, after)
	}
}

// failInserts makes every INSERT into table fail, by a trigger in the
// database's own dialect, until the returned func drops it.
func failInserts(t *testing.T, e *env, table string) (undo func()) {
	t.Helper()
	stmts := []string{"CREATE TRIGGER fail_" + table + " BEFORE INSERT ON " + table +
		" BEGIN SELECT RAISE(ABORT, 'injected'); END"}
	drop := "DROP TRIGGER fail_" + table
	if e.srv.st.dialect.name() == "postgres" {
		stmts = []string{
			"CREATE OR REPLACE FUNCTION fail_injected() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$",
			"CREATE TRIGGER fail_" + table + " BEFORE INSERT ON " + table + " FOR EACH ROW EXECUTE FUNCTION fail_injected()",
		}
		drop += " ON " + table
	}
	for _, q := range stmts {
		if _, err := e.srv.st.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		t.Helper()
		if _, err := e.srv.st.db.Exec(drop); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuditRetention: the janitor deletes events past the retention and no
// others, and nothing else can update or delete an event.
func TestAuditRetention(t *testing.T) {
	for _, tc := range []struct {
		name      string
		retention time.Duration
		keep      time.Duration // an event this old stays, one older than retention goes
	}{
		{"default 90 days", 0, 89 * 24 * time.Hour},
		{"7 days", 7 * 24 * time.Hour, 6 * 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.AuditRetention = tc.retention })
			retention := tc.retention
			if retention == 0 {
				retention = DefaultAuditRetention
			}
			e.register("alice", "alice@example.com") // signup, now
			e.clock.Add(retention - tc.keep)
			e.login("alice") // login.ok, keep younger than retention at the end
			e.clock.Add(tc.keep + time.Minute)
			if err := e.srv.sweep(context.Background()); err != nil {
				t.Fatal(err)
			}
			var types []string
			for _, ev := range auditRows(t, e) {
				types = append(types, ev.Type)
			}
			if strings.Join(types, ",") != evLoginOK {
				t.Fatalf("after pruning: %v, want only %s", types, evLoginOK)
			}
			for _, q := range []string{
				"UPDATE audit_events SET ip = 'forged'",
				"DELETE FROM audit_events",
			} {
				if _, err := e.srv.st.db.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
					t.Errorf("%s: %v, want refused as append-only", q, err)
				}
			}
		})
	}
}

// TestAuditOpenIDProvider: a login on the provider's page, a reused OAuth
// refresh token and a revocation at /revoke are recorded, with no token in
// the log.
func TestAuditOpenIDProvider(t *testing.T) {
	stream := &syncBuffer{}
	e := newOPEnv(t, func(c *Config) { c.ReuseGrace = -1; c.AuditLog = stream })
	e.register("alice", "alice@example.com")
	_, tok := e.cliTokens(t)
	first := tok.RefreshToken
	status, m := e.refreshGrant(first)
	second, _ := m["refresh_token"].(string)
	if status != 200 || second == "" {
		t.Fatalf("rotate: %d %v", status, m)
	}
	if status, _ := e.refreshGrant(first); status != 400 {
		t.Fatalf("reuse: %d", status)
	}
	_, tok2 := e.cliTokens(t)
	if status, m := e.postForm("/revoke", url.Values{"token": {tok2.RefreshToken}, "client_id": {CLIClientID}}); status != 200 {
		t.Fatalf("revoke: %d %v", status, m)
	}
	var got []string
	for _, ev := range auditRows(t, e) {
		if ev.Type == evSignup {
			continue
		}
		if ev.Username != "alice" || ev.IP != "127.0.0.1" || ev.RequestID == "" {
			t.Errorf("event %+v: want alice from 127.0.0.1 with a request id", ev)
		}
		got = append(got, ev.Type+":"+ev.Detail["client_id"])
	}
	want := "login.ok:latch-cli refresh.reuse_detected: login.ok:latch-cli session.revoked:latch-cli"
	if strings.Join(got, " ") != want {
		t.Fatalf("events %q, want %q", strings.Join(got, " "), want)
	}
	for _, s := range []string{first, second, tok.AccessToken, tok2.AccessToken, tok2.RefreshToken, goodPassword} {
		if strings.Contains(stream.String(), s) || strings.Contains(strings.Join(auditColumns(t, e), "\n"), s) {
			t.Errorf("a token or password in the audit log")
		}
	}
}
