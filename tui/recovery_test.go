package tui

import (
	"regexp"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"github.com/pquerna/otp/totp"

	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/server"
	"github.com/latch-dev/latch/vault"
)

const newTestPassword = "a brand new staple battery horse"

func ctrl(r rune) tea.KeyPressMsg { return tea.KeyPressMsg{Code: r, Mod: tea.ModCtrl} }

// mailHarness is a harness whose server keeps its mail in the dev mailbox.
func mailHarness(t *testing.T) *harness {
	return newHarness(t, func(c *server.Config) { c.Mail.Dev = true })
}

// waitMail waits (bounded) until the dev mailbox holds a mail of kind, and
// returns the newest one's token.
func (h *harness) waitMail(kind string) string { h.t.Helper(); return h.waitMails(kind, 1) }

// waitMails waits (bounded) until the dev mailbox holds n mails of kind,
// and returns the newest one's token.
func (h *harness) waitMails(kind string, n int) string {
	h.t.Helper()
	for range 500 {
		msgs, err := h.env.DevMail(h.ctx, testURL)
		if err != nil {
			h.t.Fatal(err)
		}
		var newest string
		seen := 0
		for _, m := range msgs {
			if m.Kind == kind {
				if seen == 0 {
					newest = m.Token()
				}
				seen++
			}
		}
		if seen >= n {
			return newest
		}
		select {
		case <-h.ctx.Done():
			h.t.Fatal(h.ctx.Err())
		case <-time.After(5 * time.Millisecond): // the outbox worker sends off the request path
		}
	}
	h.t.Fatalf("no %s mail", kind)
	return ""
}

// tokenRE masks the random tokens of mails in goldens.
var tokenRE = regexp.MustCompile(`[A-Za-z0-9_-]{20,}`)

func maskTokens(s string) string {
	return tokenRE.ReplaceAllStringFunc(s, func(m string) string { return strings.Repeat("x", len(m)) })
}

// Login → ctrl+r → the reset mail → ctrl+x Mailbox → u takes its token →
// the new password twice → home says the profile was logged out, and the
// new password logs in.
func TestForgotResetThroughTheMailbox(t *testing.T) {
	h := mailHarness(t)
	p := h.signup("demo")
	d := newDriver(t, h.app("demo", ""), 80, 24)
	d.send(NavigateMsg{To: pageLogin, Profile: p})
	d.wantScreen("Forgot password? ctrl+r")
	d.send(ctrl('r'))
	d.wantScreen("Forgot password at "+testURL, "alice", "Mailbox (ctrl+x)")
	d.keys("enter")
	d.wantScreen("If alice has an account, a reset mail is on its way", "Token", "Repeat")
	h.waitMail("password-reset")

	d.send(ctrl('x'))
	d.wantScreen("Mailbox of the development server", "alice@example.com", "reset your password")
	d.keys("enter")
	d.wantScreen("Subject", "password reset --token-stdin")
	d.keys("u")
	if _, ok := d.top().(*forgot); !ok {
		t.Fatalf("u did not return to the reset form:\n%s", d.screen())
	}
	d.wantScreen("Token taken from the Mailbox")
	d.typ(newTestPassword)
	d.keys("tab")
	d.typ(newTestPassword + "x")
	d.keys("enter")
	d.wantScreen("The passwords differ")
	d.typ(newTestPassword)
	d.keys("enter")
	d.wantScreen("Password reset: every session ended, so demo is logged out here")
	if st, _ := h.env.ProfileStatus(h.ctx, "demo"); st.State != "logged_out" {
		t.Fatalf("demo after the reset: %s", st.State)
	}
	if _, err := h.env.Login(h.ctx, loginReq("demo", newTestPassword)); err != nil {
		t.Fatalf("the new password: %v", err)
	}
}

// The dashboard says the address is unverified; v → ctrl+x → u verifies it
// with the mail's token (the Mailbox preselects it), and the notice goes.
func TestVerifyEmailFromTheDashboard(t *testing.T) {
	h := mailHarness(t)
	p := h.signup("demo")
	h.waitMail("verify-email")
	// A newer mail of another kind: the Mailbox must preselect the
	// verification, the kind the verify form asked for.
	if _, err := h.env.ForgotPassword(h.ctx, recoveryTarget(p)); err != nil {
		t.Fatal(err)
	}
	h.waitMail("password-reset")
	d := newDriver(t, h.app("demo", ""), 80, 24)
	d.send(NavigateMsg{To: pageDashboard, Profile: p})
	d.wantScreen("Email         not verified: e resends the mail, v takes its token")
	d.keys("e")
	d.wantScreen("A new verification mail is on its way")
	h.waitMails("verify-email", 2) // the new one replaces the first
	d.keys("v")
	d.wantScreen("Verify your email address", "Mailbox (ctrl+x)")
	d.send(ctrl('x'))
	d.wantScreen("confirm your email address")
	d.keys("u")
	d.wantScreen("Email alice@example.com verified.")
	d.notScreen("not verified")
}

// The change-password screen refuses a wrong current password and keeps the
// session on success.
func TestChangePasswordScreen(t *testing.T) {
	h := mailHarness(t)
	p := h.signup("demo")
	d := newDriver(t, h.app("demo", ""), 80, 24)
	d.send(NavigateMsg{To: pageDashboard, Profile: p})
	d.keys("c")
	d.wantScreen("Change password of alice")
	d.typ("wrong password")
	d.keys("tab")
	d.typ(newTestPassword)
	d.keys("tab")
	d.typ(newTestPassword)
	d.keys("enter")
	d.wantScreen("The current password is wrong; nothing changed")
	d.typ(testPassword)
	d.keys("tab")
	d.typ(newTestPassword)
	d.keys("tab")
	d.typ(newTestPassword)
	d.keys("enter")
	d.wantScreen("Password changed.")
	if st, _ := h.env.ProfileStatus(h.ctx, "demo"); st.State != "logged_in" {
		t.Fatalf("state after the change: %s", st.State)
	}
}

// Without a dev mailbox the screens do not offer one.
func TestNoMailboxOnARealServer(t *testing.T) {
	h := newHarness(t)
	p := h.signup("demo")
	d := newDriver(t, h.app("demo", ""), 80, 24)
	d.send(NavigateMsg{To: pageLogin, Profile: p}, ctrl('r'))
	d.wantScreen("Forgot password at")
	d.notScreen("Mailbox", "ctrl+x")
	d.send(ctrl('x'))
	if _, ok := d.top().(*forgot); !ok {
		t.Fatal("ctrl+x opened something without a mailbox")
	}
}

func TestGoldenForgot(t *testing.T) {
	h := mailHarness(t)
	p := h.signup("demo")
	runGolden(t, h.app("demo", ""), func(tm *teatest.TestModel) {
		tm.Send(NavigateMsg{To: pageLogin, Profile: p})
		tm.Send(ctrl('r'))
	}, "Forgot password at", "Mailbox (ctrl+x)")
}

func TestGoldenForgotReset(t *testing.T) {
	h := mailHarness(t)
	p := h.signup("demo")
	runGolden(t, h.app("demo", ""), func(tm *teatest.TestModel) {
		tm.Send(NavigateMsg{To: pageForgot, Profile: p})
		tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	}, "a reset mail is on its way", "Repeat", "Mailbox (ctrl+x)")
}

func TestGoldenMailbox(t *testing.T) {
	h := mailHarness(t)
	p := h.signup("demo")
	if _, err := h.env.ForgotPassword(h.ctx, recoveryTarget(p)); err != nil {
		t.Fatal(err)
	}
	h.waitMail("password-reset")
	runGolden(t, h.app("demo", ""), func(tm *teatest.TestModel) {
		tm.Send(NavigateMsg{To: pageMailbox, Profile: p})
	}, "reset your password", "confirm your email address")
}

func TestGoldenMailboxOpen(t *testing.T) {
	h := mailHarness(t)
	p := h.signup("demo")
	if _, err := h.env.ForgotPassword(h.ctx, recoveryTarget(p)); err != nil {
		t.Fatal(err)
	}
	h.waitMail("password-reset")
	g := startGolden(t, h.app("demo", ""), 80, 24)
	g.tm.Send(NavigateMsg{To: pageMailbox, Profile: p})
	g.wait("reset your password")
	g.tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	g.wait("Subject", "latch password reset --token-stdin")
	g.finishMasked(maskTokens)
}

func TestGoldenPasswordChange(t *testing.T) {
	h := mailHarness(t)
	p := h.signup("demo")
	runGolden(t, h.app("demo", ""), func(tm *teatest.TestModel) {
		tm.Send(NavigateMsg{To: pagePasswordChange, Profile: p})
	}, "Change password of alice", "enter changes the password")
}

func TestGoldenVerifyEmail(t *testing.T) {
	h := mailHarness(t)
	p := h.signup("demo")
	runGolden(t, h.app("demo", ""), func(tm *teatest.TestModel) {
		tm.Send(NavigateMsg{To: pageVerifyEmail, Profile: p})
	}, "Verify your email address", "Mailbox (ctrl+x)")
}

func loginReq(profile, password string) flows.LoginRequest {
	return flows.LoginRequest{Profile: profile, Server: testURL, Identifier: "alice", Password: password}
}

func recoveryTarget(p vault.Profile) flows.RecoveryTarget {
	return flows.RecoveryTarget{Profile: p.Name, Server: p.Server, Identifier: p.Username}
}

// With two-factor on, the reset form asks for a code once the server says
// so, and keeps the token: the code then completes the reset.
func TestForgotResetAsksForACode(t *testing.T) {
	h := mailHarness(t)
	p := h.signup("demo")
	s, err := h.env.StartMFASetup(h.ctx, "demo", false)
	if err != nil {
		t.Fatal(err)
	}
	code, _ := totp.GenerateCode(s.Secret, h.clock.Now())
	if _, err := h.env.EnableMFA(h.ctx, "demo", code); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(30 * time.Second) // the enable code's step is spent
	d := newDriver(t, h.app("demo", ""), 80, 24)
	d.send(NavigateMsg{To: pageForgot, Profile: p})
	d.keys("enter")
	tok := h.waitMail("password-reset")
	d.typ(tok)
	d.keys("tab")
	d.typ(newTestPassword)
	d.keys("tab")
	d.typ(newTestPassword)
	d.keys("enter")
	d.wantScreen("This account has two-factor on", "The token is still good")
	if _, ok := d.top().(*forgot); !ok || d.top().(*forgot).reset.focus != 3 {
		t.Fatalf("the code field does not have the keyboard:\n%s", d.screen())
	}
	d.typ("000000")
	d.keys("enter")
	d.wantScreen("The code is wrong")
	next, _ := totp.GenerateCode(s.Secret, h.clock.Now())
	d.typ(next)
	d.keys("enter")
	d.wantScreen("Password reset")
}
