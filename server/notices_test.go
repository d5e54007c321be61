package server

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func (e *env) loginAs(name, ua string) tokenPair {
	e.t.Helper()
	r := e.do("POST", "/auth/login", map[string]string{"identifier": name, "password": goodPassword}, "User-Agent", ua)
	if r.Status != 200 {
		e.t.Fatalf("login %s: %d %s", name, r.Status, r.Body)
	}
	return decodePair(e.t, r)
}

// TestSecurityNotices runs every change that mails its owner and checks the
// outbox, in order.
func TestSecurityNotices(t *testing.T) {
	e := newEnv(t)
	mb := e.mailbox()
	e.register("alice", "alice@example.com")
	p := e.loginAs("alice", "curl/8") // an account's first client is not news
	e.loginAs("alice", "curl/8")
	e.loginAs("alice", "Firefox/140")
	e.bearer("POST", "/auth/password", p.AccessToken, map[string]string{"current_password": goodPassword, "new_password": newPassword})
	secret := e.setup(p.AccessToken)
	backupCodes(t, e.bearer("POST", "/auth/mfa/enable", p.AccessToken, map[string]string{"code": totpCode(t, secret, e.clock.Now())}))
	e.clock.Add(30 * time.Second)
	backupCodes(t, e.bearer("POST", "/auth/mfa/backup-codes", p.AccessToken, map[string]string{"code": totpCode(t, secret, e.clock.Now())}))
	e.clock.Add(30 * time.Second)
	if r := e.bearer("POST", "/auth/mfa/disable", p.AccessToken, map[string]string{"code": totpCode(t, secret, e.clock.Now())}); r.Status != 200 {
		t.Fatalf("disable: %d %s", r.Status, r.Body)
	}
	// A refresh token presented again after the grace window.
	q := decodePair(t, e.do("POST", "/auth/login", map[string]string{"identifier": "alice", "password": newPassword}, "User-Agent", "curl/8"))
	e.refresh(q.RefreshToken)
	e.clock.Add(time.Minute)
	wantProblem(t, "reuse", e.refresh(q.RefreshToken), 401, probTokenReused)
	wantProblem(t, "reuse again", e.refresh(q.RefreshToken), 401, probInvalidRefresh)

	want := []string{purposeVerify, "new-sign-in", "password-changed", "mfa-enabled", "backup-codes-regenerated",
		"mfa-disabled", "refresh-reuse"}
	if got := outboxKinds(t, e); !slices.Equal(got, want) {
		t.Fatalf("outbox kinds:\n got %v\nwant %v", got, want)
	}
	for _, m := range mb.mails {
		if m.To != "alice@example.com" || m.Data["username"] != "alice" {
			t.Errorf("%s mail to %s for %q", m.Kind, m.To, m.Data["username"])
		}
		if m.Kind != purposeVerify && (m.Data["when"] == "" || m.Data["ip"] == "" || m.Data["user_agent"] == "") {
			t.Errorf("%s mail lacks when/ip/user_agent: %v", m.Kind, m.Data)
		}
	}
	if n := mb.to("new-sign-in", "alice@example.com"); n[0].Data["user_agent"] != "Firefox/140" || n[0].Data["ip"] != "127.0.0.1" {
		t.Errorf("new sign-in notice: %v", n[0].Data)
	}
}

func TestMFAEndOtherSessions(t *testing.T) {
	e := newEnv(t)
	e.register("alice", "alice@example.com")
	p1, p2, p3 := e.login("alice"), e.login("alice"), e.login("alice")
	secret := e.setup(p1.AccessToken)
	r := e.bearer("POST", "/auth/mfa/enable", p1.AccessToken, map[string]string{"code": totpCode(t, secret, e.clock.Now())})
	var on struct {
		Codes  []string `json:"backup_codes"`
		Others *int     `json:"other_sessions"`
	}
	if json.Unmarshal(r.Body, &on); r.Status != 200 || len(on.Codes) != 10 || on.Others == nil || *on.Others != 2 {
		t.Fatalf("enable, keeping the others: %d %s", r.Status, r.Body)
	}
	r = e.bearer("POST", "/auth/mfa/disable", p1.AccessToken, map[string]any{"code": on.Codes[0], "end_other_sessions": true})
	if r.Status != 200 || r.json(t)["other_sessions"] != float64(0) {
		t.Fatalf("disable, ending the others: %d %s", r.Status, r.Body)
	}
	for _, p := range []tokenPair{p2, p3} {
		wantProblem(t, "another session", e.refresh(p.RefreshToken), 401, probInvalidRefresh)
	}
	if r := e.bearer("GET", "/auth/me", p1.AccessToken, nil); r.Status != 200 {
		t.Fatalf("the caller's session ended: %d", r.Status)
	}
	p4 := e.login("alice")
	e.clock.Add(30 * time.Second)
	secret = e.setup(p1.AccessToken)
	r = e.bearer("POST", "/auth/mfa/enable", p1.AccessToken, map[string]any{"code": totpCode(t, secret, e.clock.Now()), "end_other_sessions": true})
	if r.Status != 200 || r.json(t)["other_sessions"] != float64(0) {
		t.Fatalf("enable, ending the others: %d %s", r.Status, r.Body)
	}
	wantProblem(t, "a session from before enable", e.bearer("GET", "/auth/me", p4.AccessToken, nil), 401, probUnauthorized)
}

func TestRequireVerifiedEmail(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RequireVerifiedEmail = true })
	mb := e.mailbox()
	e.register("alice", "alice@example.com")
	login := func(pw string) *resp {
		return e.do("POST", "/auth/login", map[string]string{"identifier": "alice", "password": pw})
	}
	wantProblem(t, "a wrong password", login("wrong"), 401, probCredentials)
	r := login(goodPassword)
	wantProblem(t, "unverified", r, 403, probEmailUnverified)
	if d, _ := r.json(t)["detail"].(string); !strings.Contains(d, "latch email resend") || strings.Contains(string(r.Body), "token\"") {
		t.Fatalf("detail: %s", r.Body)
	}
	var sessions, challenges int
	e.srv.st.db.QueryRow("SELECT count(*) FROM sessions").Scan(&sessions)
	e.srv.st.db.QueryRow("SELECT count(*) FROM mfa_challenges").Scan(&challenges)
	if sessions+challenges != 0 {
		t.Fatalf("a refused login left %d sessions, %d challenges", sessions, challenges)
	}
	// No session to resend with: by identifier.
	if r := e.do("POST", "/auth/email/resend", map[string]string{"identifier": "alice@example.com"}); r.Status != 202 {
		t.Fatalf("resend: %d %s", r.Status, r.Body)
	}
	if r := e.verifyToken(mb.token(t, purposeVerify, "alice@example.com")); r.Status != 200 {
		t.Fatalf("verify: %d %s", r.Status, r.Body)
	}
	if p := e.login("alice"); !claimVerified(t, e, p.AccessToken) {
		t.Fatal("no email_verified claim")
	}
}

func TestRequireVerifiedEmailLoginPage(t *testing.T) {
	e := newOPEnv(t, func(c *Config) { c.RequireVerifiedEmail = true })
	e.register("alice", "alice@example.com")
	a := newAuthorization(e.cliConfig("127.0.0.1:9999"))
	b := e.newBrowser()
	p := submitLogin(t, b, b.Get(a.url()), "alice")
	if p.Status != 403 || !strings.Contains(p.Text(), "verified email address") {
		t.Fatalf("login page, unverified: %d %s", p.Status, p.Text())
	}
}

// TestRegisterDoesNotRevealAddresses: with verified addresses required, a
// taken email gets the answer a new one does, and its owner a mail.
func TestRegisterDoesNotRevealAddresses(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RequireVerifiedEmail = true })
	mb := e.mailbox()
	e.register("alice", "alice@example.com")
	reg := func(user, email string) *resp {
		return e.do("POST", "/auth/register", map[string]string{"username": user, "email": email, "password": goodPassword})
	}
	// The same answer, byte for byte, as a new account's: no user id, which
	// would give a made-up one away.
	fresh := reg("carol", "carol@example.com")
	r := reg("mallory", "Alice@example.com")
	if r.Status != 201 || fresh.Status != 201 || string(r.Body) != string(fresh.Body) {
		t.Fatalf("taken address: %d %s; new one: %d %s", r.Status, r.Body, fresh.Status, fresh.Body)
	}
	if len(mb.to("account-exists", "alice@example.com")) != 1 {
		t.Fatal("the owner was not told")
	}
	var n int
	e.srv.st.db.QueryRow("SELECT count(*) FROM users WHERE username = 'mallory'").Scan(&n)
	if n != 0 {
		t.Fatal("an account was made with a taken address")
	}
	r = reg("alice", "new@example.com")
	wantProblem(t, "taken username", r, 409, probConflict)
	if errs, _ := r.json(t)["errors"].(map[string]any); len(errs) != 1 || errs["username"] == nil {
		t.Fatalf("errors: %s", r.Body)
	}
	if r := reg("bob", "bob@example.com"); r.Status != 201 {
		t.Fatalf("new account: %d %s", r.Status, r.Body)
	}
	// Without the flag, the conflict names the field as before.
	d := newEnv(t)
	d.register("alice", "alice@example.com")
	r = d.do("POST", "/auth/register", map[string]string{"username": "mallory", "email": "alice@example.com", "password": goodPassword})
	if errs, _ := r.json(t)["errors"].(map[string]any); r.Status != 409 || errs["email"] == nil {
		t.Fatalf("default mode: %d %s", r.Status, r.Body)
	}
}

// TestBackoffDoesNotLinkIdentifiers: after a username's failures lock its
// account, the account's email answers as any other identifier does.
func TestBackoffDoesNotLinkIdentifiers(t *testing.T) {
	e := newEnv(t)
	e.register("alice", "alice@example.com")
	try := func(id, pw string) *resp {
		return e.do("POST", "/auth/login", map[string]string{"identifier": id, "password": pw})
	}
	for range freeFailures + 1 {
		try("alice", "wrong")
	}
	wantProblem(t, "the locked username", try("alice", "wrong"), 429, probRateLimited)
	for _, id := range []string{"alice@example.com", "nobody@example.com"} {
		wantProblem(t, id, try(id, "wrong"), 401, probCredentials)
	}
	// Still locked, silently: the right password through the email does
	// not get in either.
	wantProblem(t, "the right password while locked", try("alice@example.com", goodPassword), 401, probCredentials)
	e.clock.Add(maxBackoff)
	if r := try("alice@example.com", goodPassword); r.Status != 200 {
		t.Fatalf("after the lock: %d %s", r.Status, r.Body)
	}
}

func TestEmailVerifiedInOIDC(t *testing.T) {
	e := newOPEnv(t)
	mb := e.mailbox()
	e.register("alice", "alice@example.com")
	claims := func() (idVerified, infoVerified, atVerified bool) {
		a := newAuthorization(e.cliConfig("127.0.0.1:9999"))
		q := e.codeFlow(t, a, "alice", nil)
		tok, err := a.cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(a.verifier))
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Email         string `json:"email"`
			EmailVerified *bool  `json:"email_verified"`
		}
		if err := e.verifyID(t, tok, CLIClientID, a.nonce).Claims(&c); err != nil || c.EmailVerified == nil || c.Email != "alice@example.com" {
			t.Fatalf("ID token claims: %+v %v", c, err)
		}
		prov, err := oidc.NewProvider(context.Background(), e.srv.cfg.Issuer)
		if err != nil {
			t.Fatal(err)
		}
		info, err := prov.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatal(err)
		}
		return *c.EmailVerified, info.EmailVerified, claimVerified(t, e, tok.AccessToken)
	}
	if id, info, at := claims(); id || info || at {
		t.Fatalf("before verifying: ID token %v, userinfo %v, access token %v", id, info, at)
	}
	e.verifyToken(mb.token(t, purposeVerify, "alice@example.com"))
	if id, info, at := claims(); !id || !info || !at {
		t.Fatalf("after verifying: ID token %v, userinfo %v, access token %v", id, info, at)
	}
}

// TestRecoveryProblemTypesDocumented: the new problem types are in the
// OpenAPI document.
func TestRecoveryProblemTypesDocumented(t *testing.T) {
	for _, typ := range []string{probTokenInvalid, probTokenExpired, probTokenUsed, probEmailUnverified, probMFARequired} {
		if !strings.Contains(string(openapiDoc), "`"+typ+"`") {
			t.Errorf("problem type %s is not documented in openapi.yaml", typ)
		}
	}
}

// TestRecoveryNoSecretsInLogs runs the recovery flows with debug logging
// and looks for their tokens and passwords in the log.
func TestRecoveryNoSecretsInLogs(t *testing.T) {
	e := newEnv(t)
	mb := e.mailbox()
	e.register("alice", "alice@example.com")
	vtok := mb.token(t, purposeVerify, "alice@example.com")
	e.do("GET", "/email/verify?token="+vtok, nil)
	e.verifyToken(vtok)
	e.forgot("alice")
	e.forgot("nobody")
	rtok := mb.token(t, purposeReset, "alice@example.com")
	e.do("GET", "/password/reset?token="+rtok, nil)
	e.reset(rtok, "password", "")
	e.reset(rtok, newPassword, "")
	a := decodePair(t, e.do("POST", "/auth/login", map[string]string{"identifier": "alice", "password": newPassword})).AccessToken
	e.bearer("POST", "/auth/email/change", a, map[string]string{"new_email": "alice@new.example", "password": newPassword})
	e.bearer("POST", "/auth/email/resend", a, nil)
	ctok := mb.token(t, purposeVerify, "alice@new.example")
	logs := e.logs.String()
	if !strings.Contains(logs, "password reset") || !strings.Contains(logs, "path=/password/reset") {
		t.Fatalf("the flows did not run: %q", logs)
	}
	for _, secret := range []string{vtok, rtok, ctok, newPassword, goodPassword, "token="} {
		if strings.Contains(logs, secret) {
			t.Errorf("log holds a secret (%.12s…)", secret)
		}
	}
}
