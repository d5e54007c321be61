package server

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

const newPassword = "tangerine orbit quietly jumps"

func (e *env) forgot(identifier string) *resp {
	e.t.Helper()
	return e.do("POST", "/auth/password/forgot", map[string]string{"identifier": identifier})
}

func (e *env) reset(tok, pw, code string) *resp {
	e.t.Helper()
	body := map[string]string{"token": tok, "new_password": pw}
	if code != "" {
		body["code"] = code
	}
	return e.do("POST", "/auth/password/reset", body)
}

func TestPasswordReset(t *testing.T) {
	e := newEnv(t)
	mb := e.mailbox()
	e.register("alice", "alice@example.com")
	e.register("bob", "bob@example.com")
	p1, p2 := e.login("alice"), e.login("alice")
	bob := e.login("bob")

	if r := e.forgot("alice"); r.Status != 202 || string(r.Body) != "{}\n" {
		t.Fatalf("forgot: %d %s", r.Status, r.Body)
	}
	ms := mb.to(purposeReset, "alice@example.com")
	if len(ms) != 1 {
		t.Fatalf("%d reset mails", len(ms))
	}
	tok := ms[0].Data["token"]
	if want := "http://latch.test/password/reset?token=" + tok; ms[0].Data["link"] != want || len(tok) != 43 {
		t.Fatalf("link %q, want %q", ms[0].Data["link"], want)
	}

	cases := []struct {
		name, token, pw string
		status          int
		typ             string
	}{
		{"no token", "", newPassword, 400, probValidation},
		{"no password", tok, "", 400, probValidation},
		{"unknown token", otherToken(tok), newPassword, 400, probTokenInvalid},
		{"weak password", tok, "password", 400, probValidation},
		{"password with the username", tok, "alice tangerine orbit quietly", 400, probValidation},
		{"good", tok, newPassword, 204, ""},
		{"again", tok, "another orbit quietly tangerine", 400, probTokenUsed},
	}
	for _, tc := range cases {
		r := e.reset(tc.token, tc.pw, "")
		if tc.typ == "" {
			if r.Status != tc.status {
				t.Fatalf("%s: %d %s", tc.name, r.Status, r.Body)
			}
			continue
		}
		wantProblem(t, tc.name, r, tc.status, tc.typ)
	}

	// Every session and refresh-token family of alice is over; bob's not.
	for _, p := range []tokenPair{p1, p2} {
		wantProblem(t, "the old refresh token", e.refresh(p.RefreshToken), 401, probInvalidRefresh)
		wantProblem(t, "the old access token", e.bearer("GET", "/auth/me", p.AccessToken, nil), 401, probUnauthorized)
	}
	if !strings.Contains(string(e.refresh(p1.RefreshToken).Body), "password reset") {
		t.Error("the refusal does not say the session ended by a reset")
	}
	if r := e.bearer("GET", "/auth/me", bob.AccessToken, nil); r.Status != 200 {
		t.Fatalf("bob's session ended too: %d", r.Status)
	}
	wantProblem(t, "the old password", e.do("POST", "/auth/login", map[string]string{"identifier": "alice", "password": goodPassword}), 401, probCredentials)
	if r := e.do("POST", "/auth/login", map[string]string{"identifier": "alice", "password": newPassword}); r.Status != 200 {
		t.Fatalf("the new password: %d %s", r.Status, r.Body)
	}
	kinds := outboxKinds(t, e)
	if !slices.Contains(kinds, "password-reset-done") {
		t.Fatalf("no reset notice in the outbox: %v", kinds)
	}
	if done := mb.to("password-reset-done", "alice@example.com"); len(done) != 1 || done[0].Data["ip"] != "127.0.0.1" {
		t.Fatalf("reset notice: %v", done)
	}
}

func TestResetTokenExpires(t *testing.T) {
	e := newEnv(t)
	mb := e.mailbox()
	e.register("alice", "alice@example.com")
	e.forgot("alice@example.com")
	tok := mb.token(t, purposeReset, "alice@example.com")
	e.clock.Add(resetTTL)
	wantProblem(t, "after 30 minutes", e.reset(tok, newPassword, ""), 400, probTokenExpired)
	// A newer request replaces the older token.
	e.forgot("alice")
	old := mb.token(t, purposeReset, "alice@example.com")
	e.forgot("alice")
	wantProblem(t, "a replaced token", e.reset(old, newPassword, ""), 400, probTokenInvalid)
	if r := e.reset(mb.token(t, purposeReset, "alice@example.com"), newPassword, ""); r.Status != 204 {
		t.Fatalf("the newest token: %d %s", r.Status, r.Body)
	}
}

func TestPasswordResetWithTOTP(t *testing.T) {
	e := newEnv(t)
	mb := e.mailbox()
	u := e.enrol("carol")
	e.forgot("carol")
	tok := mb.token(t, purposeReset, "carol@example.com")
	wantProblem(t, "no code", e.reset(tok, newPassword, ""), 401, probMFARequired)
	wantProblem(t, "a wrong code", e.reset(tok, newPassword, "000000"), 401, probInvalidCode)
	// Neither spent the token; a backup code does the job.
	if r := e.reset(tok, newPassword, u.backup[0]); r.Status != 204 {
		t.Fatalf("reset with a backup code: %d %s", r.Status, r.Body)
	}
	wantProblem(t, "the backup code again", e.verify(e.challengeWith("carol", newPassword), u.backup[0]), 401, probInvalidCode)

	// And with a TOTP code; two-factor stays on.
	e.forgot("carol")
	e.clock.Add(30 * time.Second)
	if r := e.reset(mb.token(t, purposeReset, "carol@example.com"), goodPassword, totpCode(t, u.secret, e.clock.Now())); r.Status != 204 {
		t.Fatalf("reset with a TOTP code: %d %s", r.Status, r.Body)
	}
	e.challenge("carol")
}

// challengeWith logs in with a password and returns the mfa_token.
func (e *env) challengeWith(name, pw string) string {
	e.t.Helper()
	r := e.do("POST", "/auth/login", map[string]string{"identifier": name, "password": pw})
	tok, _ := r.json(e.t)["mfa_token"].(string)
	if r.Status != 200 || tok == "" {
		e.t.Fatalf("login %s: want an MFA challenge: %d %s", name, r.Status, r.Body)
	}
	return tok
}

func TestResetTokenConcurrentUse(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DBPath = t.TempDir() + "/latch.db" })
	mb := e.mailbox()
	e.register("alice", "alice@example.com")
	e.forgot("alice")
	tok := mb.token(t, purposeReset, "alice@example.com")
	statuses := race(t, 8, func() *resp { return e.reset(tok, newPassword, "") })
	if !slices.Equal(statuses, []int{204, 400, 400, 400, 400, 400, 400, 400}) {
		t.Fatalf("8 concurrent resets with one token: %v, want one 204", statuses)
	}
	if n := len(mb.to("password-reset-done", "alice@example.com")); n != 1 {
		t.Fatalf("%d reset notices, want 1", n)
	}
}

func TestResetEndsOAuthGrants(t *testing.T) {
	e := newOPEnv(t)
	mb := e.mailbox()
	e.register("alice", "alice@example.com")
	_, tok := e.cliTokens(t)
	e.forgot("alice")
	if r := e.reset(mb.token(t, purposeReset, "alice@example.com"), newPassword, ""); r.Status != 204 {
		t.Fatalf("reset: %d %s", r.Status, r.Body)
	}
	if status, body := e.refreshGrant(tok.RefreshToken); status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("the OAuth refresh token after a reset: %d %v", status, body)
	}
}

func TestForgotAnswersAlike(t *testing.T) {
	e := newEnv(t)
	mb := e.mailbox()
	e.register("alice", "alice@example.com")
	var first *resp
	for _, id := range []string{"alice", "ALICE@example.com", "nobody", "nobody@example.com"} {
		r := e.forgot(id)
		if first == nil {
			first = r
		}
		if r.Status != 202 || string(r.Body) != string(first.Body) || r.Header.Get("Content-Type") != first.Header.Get("Content-Type") {
			t.Fatalf("forgot %s: %d %s", id, r.Status, r.Body)
		}
	}
	if n := len(mb.mails); n != 3 { // signup + two resets
		t.Fatalf("%d mails, want 3: %v", n, mb.mails)
	}
	wantProblem(t, "no identifier", e.forgot(""), 400, probValidation)
}

func TestRecoveryRateLimits(t *testing.T) {
	t.Run("per IP", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.RateIP = 6 }) // burst 3
		for i := range 3 {
			if r := e.forgot(fmt.Sprint("user", i)); r.Status != 202 {
				t.Fatalf("forgot %d: %d", i, r.Status)
			}
		}
		wantProblem(t, "4th forgot", e.forgot("user9"), 429, probRateLimited)
		for range 3 {
			e.do("POST", "/auth/email/resend", map[string]string{"identifier": "x"})
		}
		wantProblem(t, "4th resend", e.do("POST", "/auth/email/resend", map[string]string{"identifier": "x"}), 429, probRateLimited)
	})
	t.Run("per account and address, silently", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.RateAccount = 100 })
		mb := e.mailbox()
		e.register("alice", "alice@example.com")
		// Username and email charge the same account.
		for _, id := range []string{"alice", "alice@example.com", "alice", "alice", "Alice@Example.com"} {
			if r := e.forgot(id); r.Status != 202 {
				t.Fatalf("forgot %s: %d", id, r.Status)
			}
		}
		if n := len(mb.to(purposeReset, "alice@example.com")); n != mailBurst {
			t.Fatalf("%d reset mails, want %d", n, mailBurst)
		}
		e.clock.Add(mailEvery)
		e.forgot("alice")
		if n := len(mb.to(purposeReset, "alice@example.com")); n != mailBurst+1 {
			t.Fatalf("after waiting: %d reset mails", n)
		}
	})
}

// TestForgotTiming compares forgot for an existing and an unknown
// identifier: 200 samples each, interleaved, on a database file; the
// medians must be within 2 ms. Each existing request really mails (no
// limit holds it back), the costliest case.
func TestForgotTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("timing comparison")
	}
	e := newEnv(t, func(c *Config) { c.DBPath = t.TempDir() + "/latch.db" })
	e.register("alice", "alice@example.com")
	const n = 200
	var known, unknown []time.Duration
	measure := func(id string) time.Duration {
		start := time.Now()
		if r := e.forgot(id); r.Status != 202 {
			t.Fatalf("forgot %s: %d", id, r.Status)
		}
		return time.Since(start)
	}
	for i := range n + 10 {
		k, u := measure("alice"), measure(fmt.Sprintf("nobody%d", i))
		if i >= 10 { // warm-up
			known, unknown = append(known, k), append(unknown, u)
		}
	}
	mk, mu := median(known), median(unknown)
	t.Logf("forgot medians over %d samples: existing %v, unknown %v", n, mk, mu)
	if d := mk - mu; d > 2*time.Millisecond || d < -2*time.Millisecond {
		t.Fatalf("forgot medians differ by %v: existing %v, unknown %v", d, mk, mu)
	}
	var mails int
	e.srv.st.db.QueryRowContext(context.Background(), "SELECT count(*) FROM outbox WHERE kind = ?", purposeReset).Scan(&mails)
	if mails != n+10 {
		t.Fatalf("%d reset mails queued, want %d: the existing path did not do its work", mails, n+10)
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func TestResetPage(t *testing.T) {
	e := newOPEnv(t)
	mb := e.mailbox()
	e.register("alice", "alice@example.com")
	u := e.enrol("carol")
	for _, name := range []string{"alice", "carol"} {
		t.Run(name, func(t *testing.T) {
			e.forgot(name)
			link := mb.to(purposeReset, name+"@example.com")[0].Data["link"]
			b := e.newBrowser()
			p := b.Get(link)
			if p.Status != 200 || p.Field("new_password") == nil || (p.Field("code") != nil) != (name == "carol") {
				t.Fatalf("reset page: %d %s", p.Status, p.Body)
			}
			p = b.Submit(p, map[string]string{"new_password": "password"})
			if p.Status != 400 || !strings.Contains(p.Text(), "The new password is too easy to guess") || p.Field("new_password") == nil {
				t.Fatalf("a weak password: %d %s", p.Status, p.Text())
			}
			vals := map[string]string{"new_password": newPassword}
			if name == "carol" {
				vals["code"] = u.backup[1]
			}
			p = b.Submit(p, vals)
			if p.Status != 200 || !strings.Contains(p.Text(), "Password changed") {
				t.Fatalf("reset: %d %s", p.Status, p.Text())
			}
			if p := b.Get(link); p.Status != 400 || !strings.Contains(p.Text(), "already used") {
				t.Fatalf("the link again: %d %s", p.Status, p.Text())
			}
		})
	}
}

// otherToken is tok with its first character changed (a fixed "x" would be
// tok itself one time in 64).
func otherToken(tok string) string {
	if tok[0] == 'x' {
		return "y" + tok[1:]
	}
	return "x" + tok[1:]
}
