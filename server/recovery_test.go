package server

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// mailbox records the mail a server queues (Server.mailHook), so a test
// can read the tokens; the outbox rows themselves are checked by kind.
type mailbox struct {
	mu    sync.Mutex
	mails []outMail
}

func (e *env) mailbox() *mailbox {
	mb := &mailbox{}
	e.srv.mailHook = func(m outMail) {
		mb.mu.Lock()
		defer mb.mu.Unlock()
		mb.mails = append(mb.mails, m)
	}
	return mb
}

// to lists the mails of kind to the address, oldest first.
func (mb *mailbox) to(kind, addr string) []outMail {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	var out []outMail
	for _, m := range mb.mails {
		if m.Kind == kind && strings.EqualFold(m.To, addr) {
			out = append(out, m)
		}
	}
	return out
}

// token is the token of the newest mail of kind to addr.
func (mb *mailbox) token(t *testing.T, kind, addr string) string {
	t.Helper()
	ms := mb.to(kind, addr)
	if len(ms) == 0 {
		t.Fatalf("no %s mail to %s", kind, addr)
	}
	tok := ms[len(ms)-1].Data["token"]
	if tok == "" {
		t.Fatalf("%s mail to %s has no token: %v", kind, addr, ms[len(ms)-1].Data)
	}
	return tok
}

// outboxKinds are the kinds of the mails in the outbox, oldest first.
func outboxKinds(t *testing.T, e *env) []string {
	t.Helper()
	rows, err := e.srv.st.db.Query("SELECT kind FROM outbox ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var kinds []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, k)
	}
	return kinds
}

func (e *env) verifyToken(tok string) *resp {
	e.t.Helper()
	return e.do("POST", "/auth/email/verify", map[string]string{"token": tok})
}

// claimVerified is the email_verified claim of an access token.
func claimVerified(t *testing.T, e *env, access string) bool {
	t.Helper()
	c, err := e.srv.verifyAccess(access)
	if err != nil {
		t.Fatal(err)
	}
	return c.EmailVerified
}

func TestEmailVerification(t *testing.T) {
	e := newEnv(t)
	mb := e.mailbox()
	e.register("alice", "alice@example.com")
	p := e.login("alice")
	if me := e.bearer("GET", "/auth/me", p.AccessToken, nil).json(t); me["email_verified"] != false {
		t.Fatalf("me before verifying: %v", me)
	}
	if claimVerified(t, e, p.AccessToken) {
		t.Fatal("access token claims a verified email before verification")
	}

	ms := mb.to(purposeVerify, "alice@example.com")
	if len(ms) != 1 {
		t.Fatalf("want one verification mail on signup, got %d", len(ms))
	}
	tok := ms[0].Data["token"]
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) != 32 {
		t.Fatalf("token %q is not 32 bytes of base64url", tok)
	}
	if want := "http://latch.test/email/verify?token=" + tok; ms[0].Data["link"] != want {
		t.Fatalf("link = %q, want %q", ms[0].Data["link"], want)
	}
	if ms[0].Data["username"] != "alice" || ms[0].Data["expires"] == "" {
		t.Fatalf("mail data: %v", ms[0].Data)
	}
	// Stored only hashed.
	var n int
	h := sha256.Sum256([]byte(tok))
	e.srv.st.db.QueryRow("SELECT count(*) FROM account_tokens WHERE hash = ?", h[:]).Scan(&n)
	if n != 1 {
		t.Fatal("the token is not stored by its SHA-256 hash")
	}
	if got := outboxKinds(t, e); !slices.Equal(got, []string{purposeVerify}) {
		t.Fatalf("outbox after signup: %v", got)
	}

	cases := []struct {
		name   string
		token  string
		status int
		typ    string
	}{
		{"missing", "", 400, probValidation},
		{"unknown", "AAAA" + tok[4:], 400, probTokenInvalid},
		{"a reset token is not a verify token", "", 400, probTokenInvalid},
		{"good", tok, 200, ""},
		{"again", tok, 400, probTokenUsed},
	}
	for _, tc := range cases {
		if tc.name == "a reset token is not a verify token" {
			e.do("POST", "/auth/password/forgot", map[string]string{"identifier": "alice"})
			tc.token = mb.token(t, purposeReset, "alice@example.com")
		}
		r := e.verifyToken(tc.token)
		if tc.typ != "" {
			wantProblem(t, tc.name, r, tc.status, tc.typ)
			continue
		}
		if m := r.json(t); r.Status != 200 || m["email"] != "alice@example.com" || m["email_verified"] != true {
			t.Fatalf("%s: %d %s", tc.name, r.Status, r.Body)
		}
	}
	if me := e.bearer("GET", "/auth/me", p.AccessToken, nil).json(t); me["email_verified"] != true {
		t.Fatalf("me after verifying: %v", me)
	}
	if q := e.login("alice"); !claimVerified(t, e, q.AccessToken) {
		t.Fatal("a new access token does not claim the verified email")
	}
	// A refreshed token carries it too.
	if q := decodePair(t, e.refresh(p.RefreshToken)); !claimVerified(t, e, q.AccessToken) {
		t.Fatal("a refreshed access token does not claim the verified email")
	}
}

func TestVerifyTokenExpires(t *testing.T) {
	e := newEnv(t)
	mb := e.mailbox()
	e.register("alice", "alice@example.com")
	tok := mb.token(t, purposeVerify, "alice@example.com")
	e.clock.Add(verifyTTL - time.Second)
	a := e.login("alice").AccessToken
	if r := e.bearer("POST", "/auth/email/resend", a, nil); r.Status != 202 {
		t.Fatalf("resend: %d %s", r.Status, r.Body)
	}
	wantProblem(t, "replaced by a newer token", e.verifyToken(tok), 400, probTokenInvalid)
	tok = mb.token(t, purposeVerify, "alice@example.com")
	e.clock.Add(verifyTTL)
	wantProblem(t, "expired", e.verifyToken(tok), 400, probTokenExpired)
}

func TestVerifyTokenConcurrentUse(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DBPath = t.TempDir() + "/latch.db" })
	mb := e.mailbox()
	e.register("alice", "alice@example.com")
	tok := mb.token(t, purposeVerify, "alice@example.com")
	statuses := race(t, 8, func() *resp { return e.verifyToken(tok) })
	if !slices.Equal(statuses, []int{200, 400, 400, 400, 400, 400, 400, 400}) {
		t.Fatalf("8 concurrent uses of one token: %v, want one 200", statuses)
	}
}

// race runs n copies of f at once and returns their statuses, sorted.
// Every loser must be token-used.
func race(t *testing.T, n int, f func() *resp) []int {
	t.Helper()
	start := make(chan struct{})
	out := make(chan *resp, n)
	for range n {
		go func() {
			<-start
			out <- f()
		}()
	}
	close(start)
	var statuses []int
	for range n {
		r := <-out
		if r.Status != 200 && r.Status != 204 {
			wantProblem(t, "a losing use", r, 400, probTokenUsed)
		}
		statuses = append(statuses, r.Status)
	}
	slices.Sort(statuses)
	return statuses
}

func TestEmailResend(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RateAccount = 100 })
	mb := e.mailbox()
	e.register("alice", "alice@example.com") // the signup mail is not limited
	a := e.login("alice").AccessToken
	wantProblem(t, "no token, no body", e.do("POST", "/auth/email/resend", nil), 415, probMediaType)
	wantProblem(t, "a bad Bearer token", e.bearer("POST", "/auth/email/resend", "nope", nil), 401, probUnauthorized)
	for i := range mailBurst {
		if r := e.bearer("POST", "/auth/email/resend", a, nil); r.Status != 202 || string(r.Body) != "{}\n" {
			t.Fatalf("resend %d: %d %s", i, r.Status, r.Body)
		}
	}
	wantProblem(t, "the mail limit", e.bearer("POST", "/auth/email/resend", a, nil), 429, probRateLimited)
	if n := len(mb.to(purposeVerify, "alice@example.com")); n != 1+mailBurst {
		t.Fatalf("%d verification mails, want %d", n, 1+mailBurst)
	}
	e.verifyToken(mb.token(t, purposeVerify, "alice@example.com"))
	wantProblem(t, "already verified", e.bearer("POST", "/auth/email/resend", a, nil), 409, probConflict)

	// Without a session: by identifier, always 202, mail only to an
	// unverified account.
	e.register("bob", "bob@example.com")
	e.register("carol", "carol@example.com")
	e.verifyToken(mb.token(t, purposeVerify, "carol@example.com"))
	for _, id := range []string{"bob", "alice", "carol", "nobody", "nobody@example.com"} {
		if r := e.do("POST", "/auth/email/resend", map[string]string{"identifier": id}); r.Status != 202 || string(r.Body) != "{}\n" {
			t.Fatalf("resend for %s: %d %s", id, r.Status, r.Body)
		}
	}
	if n := len(mb.to(purposeVerify, "bob@example.com")); n != 2 {
		t.Fatalf("bob got %d verification mails, want 2", n)
	}
	if n := len(mb.to(purposeVerify, "carol@example.com")); n != 1 {
		t.Fatalf("verified carol got another mail (%d)", n)
	}
	wantProblem(t, "no identifier", e.do("POST", "/auth/email/resend", map[string]string{}), 400, probValidation)
}

func TestEmailChange(t *testing.T) {
	for _, quiet := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "require verified"}[quiet], func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.RequireVerifiedEmail = quiet })
			mb := e.mailbox()
			e.register("alice", "alice@example.com")
			e.register("bob", "bob@example.com")
			e.verifyToken(mb.token(t, purposeVerify, "alice@example.com"))
			e.verifyToken(mb.token(t, purposeVerify, "bob@example.com"))
			a := e.login("alice").AccessToken
			change := func(addr, pw string) *resp {
				return e.bearer("POST", "/auth/email/change", a, map[string]string{"new_email": addr, "password": pw})
			}
			wantProblem(t, "wrong password", change("new@example.com", "wrong"), 401, probCredentials)
			wantProblem(t, "bad address", change("not an address", goodPassword), 400, probValidation)
			wantProblem(t, "same address", change("ALICE@example.com", goodPassword), 400, probValidation)
			wantProblem(t, "no Bearer", e.do("POST", "/auth/email/change", map[string]string{"new_email": "x@example.com"}), 401, probUnauthorized)

			r := change("bob@example.com", goodPassword)
			if quiet {
				if r.Status != 202 || r.json(t)["email"] != "bob@example.com" {
					t.Fatalf("taken address, quietly: %d %s", r.Status, r.Body)
				}
				if len(mb.to("account-exists", "bob@example.com")) != 1 {
					t.Fatal("the address's owner was not told")
				}
				if me := e.bearer("GET", "/auth/me", a, nil).json(t); me["email"] != "alice@example.com" {
					t.Fatalf("the account moved to a taken address: %v", me)
				}
			} else {
				wantProblem(t, "taken address", r, 409, probConflict)
			}

			r = change("alice@new.example", goodPassword)
			if m := r.json(t); r.Status != 202 || m["email"] != "alice@new.example" || m["email_verified"] != false {
				t.Fatalf("change: %d %s", r.Status, r.Body)
			}
			if me := e.bearer("GET", "/auth/me", a, nil).json(t); me["email"] != "alice@new.example" || me["email_verified"] != false {
				t.Fatalf("me after change: %v", me)
			}
			old := mb.to("email-changed", "alice@example.com")
			if len(old) != 1 || old[0].Data["new_email"] != "alice@new.example" || old[0].Data["old_email"] != "alice@example.com" {
				t.Fatalf("notice to the old address: %v", old)
			}
			if r := e.verifyToken(mb.token(t, purposeVerify, "alice@new.example")); r.Status != 200 {
				t.Fatalf("verify the new address: %d %s", r.Status, r.Body)
			}
		})
	}
}

// TestVerifyPage opens the link as a mail scanner would (GET: nothing is
// spent), then confirms it as a person does (the page's form).
func TestVerifyPage(t *testing.T) {
	e := newOPEnv(t)
	mb := e.mailbox()
	e.register("alice", "alice@example.com")
	link := mb.to(purposeVerify, "alice@example.com")[0].Data["link"]
	if !strings.HasPrefix(link, e.srv.cfg.Issuer+"/email/verify?token=") {
		t.Fatalf("link %q", link)
	}
	b := e.newBrowser()
	for range 3 {
		p := b.Get(link)
		if p.Status != 200 || p.Field("token") == nil || p.Field("csrf") == nil {
			t.Fatalf("verify page: %d %s", p.Status, p.Body)
		}
	}
	var verified bool
	e.srv.st.db.QueryRow("SELECT email_verified FROM users WHERE username = 'alice'").Scan(&verified)
	if verified {
		t.Fatal("a GET verified the address")
	}
	// A form from another site (no CSRF token) is refused.
	u, _ := url.Parse(link)
	res, err := http.PostForm(e.srv.cfg.Issuer+"/email/verify", url.Values{"token": {u.Query().Get("token")}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 403 {
		t.Fatalf("form without CSRF token: %d", res.StatusCode)
	}
	p := b.Submit(b.Get(link), nil)
	if p.Status != 200 || !strings.Contains(p.Text(), "alice@example.com is verified") {
		t.Fatalf("confirm: %d %s", p.Status, p.Text())
	}
	if p := b.Get(link); p.Status != 400 || !strings.Contains(p.Text(), "already used") {
		t.Fatalf("the link again: %d %s", p.Status, p.Text())
	}
}
