package server

import (
	"context"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// A reset token mailed before a password change must not outlive it: the
// change is how an owner takes an account back from someone who may also
// read the mailbox, so a pending token would undo it.
func TestPasswordChangeVoidsResetToken(t *testing.T) {
	e := newEnv(t)
	mb := e.mailbox()
	e.register("alice", "alice@example.com")
	p := e.login("alice")
	e.forgot("alice")
	tok := mb.token(t, purposeReset, "alice@example.com")
	if r := e.bearer("POST", "/auth/password", p.AccessToken,
		map[string]string{"current_password": goodPassword, "new_password": newPassword}); r.Status != 204 {
		t.Fatalf("change: %d %s", r.Status, r.Body)
	}
	wantProblem(t, "a reset token from before the change", e.reset(tok, "another orbit quietly tangerine", ""), 400, probTokenInvalid)
	if r := e.do("POST", "/auth/login", map[string]string{"identifier": "alice", "password": newPassword}); r.Status != 200 {
		t.Fatalf("the changed password: %d %s", r.Status, r.Body)
	}
}

// The refusal of an unverified login tells how to get a new mail without a
// session: `latch email resend` alone needs one, so it must name -u.
func TestEmailUnverifiedSaysHowToResend(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RequireVerifiedEmail = true })
	e.register("alice", "alice@example.com")
	r := e.do("POST", "/auth/login", map[string]string{"identifier": "alice", "password": goodPassword})
	wantProblem(t, "unverified", r, 403, probEmailUnverified)
	if d, _ := r.json(t)["detail"].(string); !strings.Contains(d, "latch email resend -u USERNAME_OR_EMAIL --server URL") {
		t.Fatalf("detail: %s", d)
	}
}

// Every notice shows the user agent cut to 200 characters, as the MFA and
// browser sign-ins record it, so that one client is one client whichever
// way it signs in, and a caller cannot stuff a mail.
func TestNoticeUserAgentTruncated(t *testing.T) {
	e := newEnv(t)
	mb := e.mailbox()
	e.register("alice", "alice@example.com")
	e.loginAs("alice", "curl/8")
	long := strings.Repeat("x", 5000)
	p := e.loginAs("alice", long)
	e.do("POST", "/auth/password", map[string]string{"current_password": goodPassword, "new_password": newPassword},
		"Authorization", "Bearer "+p.AccessToken, "User-Agent", long)
	for _, kind := range []string{"new-sign-in", "password-changed"} {
		ms := mb.to(kind, "alice@example.com")
		if len(ms) != 1 || ms[0].Data["user_agent"] != truncate(long, 200) {
			t.Fatalf("%s notices: %d, user agent of %d characters", kind, len(ms), len(ms[0].Data["user_agent"]))
		}
	}
}

// A device grant approved just before a reset and redeemed after it would
// open a session the reset never saw: the reset must deny what is approved
// but not yet redeemed, as it does logins half-way through.
func TestResetDeniesApprovedUnredeemedGrants(t *testing.T) {
	e := newOPEnv(t)
	mb := e.mailbox()
	e.register("alice", "alice@example.com")
	cfg := e.cliConfig("127.0.0.1")
	da := e.startDevice(t, cfg)
	if p := e.approveDevice(t, da, "alice", "approve", nil); !strings.Contains(p.Text(), "approved") {
		t.Fatalf("result page: %s", p.Text())
	}
	e.forgot("alice")
	if r := e.reset(mb.token(t, purposeReset, "alice@example.com"), newPassword, ""); r.Status != 204 {
		t.Fatalf("reset: %d %s", r.Status, r.Body)
	}
	if tok, err := deviceToken(cfg, da); oauthErr(err) != "access_denied" {
		t.Fatalf("a device grant approved before the reset, redeemed after: %v %v", tok != nil, err)
	}
}

// The same for an authorization code issued before the reset and
// exchanged after it.
func TestResetVoidsUnexchangedCode(t *testing.T) {
	e := newOPEnv(t)
	mb := e.mailbox()
	e.register("alice", "alice@example.com")
	a := newAuthorization(e.cliConfig("127.0.0.1:9999"))
	q := e.codeFlow(t, a, "alice", nil)
	e.forgot("alice")
	if r := e.reset(mb.token(t, purposeReset, "alice@example.com"), newPassword, ""); r.Status != 204 {
		t.Fatalf("reset: %d %s", r.Status, r.Body)
	}
	if _, err := a.cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(a.verifier)); oauthErr(err) != "invalid_grant" {
		t.Fatalf("a code issued before the reset, exchanged after: %v", err)
	}
}
