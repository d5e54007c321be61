package flows

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/server"
)

const newPassword = "a brand new staple battery horse"

// devMailEnv is a real server keeping its mail in the dev mailbox.
func devMailEnv(t *testing.T) (*env, *Env) {
	t.Helper()
	e := newEnv(t, func(c *server.Config) { c.Mail.Dev = true })
	return e, e.accountEnv()
}

// mailToken waits (bounded) for the newest mail of kind to `to` in the dev
// mailbox, and returns its token.
func (e *env) mailToken(to, kind string) string {
	e.t.Helper()
	for range 200 {
		msgs, err := e.client.DevMail(e.ctx)
		if errors.Is(err, client.ErrNotFound) {
			e.t.Skip("the server has no dev mailbox yet (GET /dev/mail answers 404)")
		}
		if err != nil {
			e.t.Fatal(err)
		}
		for _, m := range msgs { // newest first
			if m.To == to && m.Kind == kind {
				if tok := m.Token(); tok != "" {
					return tok
				}
				e.t.Fatalf("the %s mail to %s holds no token:\n%s", kind, to, m.Text)
			}
		}
		select {
		case <-e.ctx.Done():
			e.t.Fatal(e.ctx.Err())
		case <-time.After(10 * time.Millisecond): // polling an outbox worker, not timing
		}
	}
	e.t.Fatalf("no %s mail to %s", kind, to)
	return ""
}

func (e *env) signup(ae *Env, profile, name string) {
	e.t.Helper()
	_, err := ae.Signup(e.ctx, SignupRequest{Profile: profile, Server: e.http.URL, Username: name,
		Email: name + "@example.com", Password: goodPassword})
	if err != nil {
		e.t.Fatal(err)
	}
}

// A reset ends the sessions of the token's account: that profile is logged
// out here, and says so; a profile of another account on the same server
// keeps its session.
func TestResetLogsOutOnlyTheResetAccount(t *testing.T) {
	e, ae := devMailEnv(t)
	e.signup(ae, "alice", "alice")
	e.signup(ae, "bob", "bob")

	got, err := ae.ForgotPassword(e.ctx, RecoveryTarget{Profile: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Identifier != "alice" || got.Server != e.http.URL {
		t.Fatalf("forgot used %+v, want the profile's user and server", got)
	}
	tok := e.mailToken("alice@example.com", "password-reset")

	res, err := ae.ResetPassword(e.ctx, ResetRequest{Profile: "alice", Token: tok, NewPassword: newPassword})
	if err != nil {
		t.Fatal(err)
	}
	noSecrets(t, err, tok, newPassword)
	if !slices.Equal(res.LoggedOut, []string{"alice"}) || len(res.Unchecked) != 0 {
		t.Fatalf("result %+v, want alice logged out only", res)
	}
	if st, _ := ae.ProfileStatus(e.ctx, "alice"); st.State != StateLoggedOut {
		t.Fatalf("alice after the reset: %s, want logged out", st.State)
	}
	if _, err := ae.Token(e.ctx, "alice"); !errors.Is(err, ErrLoginRequired) {
		t.Fatalf("alice's token after the reset: %v, want ErrLoginRequired", err)
	}
	if st, _ := ae.ProfileStatus(e.ctx, "bob"); st.State != StateLoggedIn {
		t.Fatalf("bob after alice's reset: %s, want logged in", st.State)
	}
	if _, err := e.client.Login(e.ctx, "alice", goodPassword); !errors.Is(err, client.ErrInvalidCredentials) {
		t.Fatalf("old password: %v", err)
	}
	if _, err := e.client.Login(e.ctx, "alice", newPassword); err != nil {
		t.Fatalf("new password: %v", err)
	}
	// The token was spent.
	_, err = ae.ResetPassword(e.ctx, ResetRequest{Profile: "alice", Token: tok, NewPassword: newPassword + "x"})
	if !errors.Is(err, client.ErrTokenUsed) {
		t.Fatalf("second use: %v, want ErrTokenUsed", err)
	}
}

// With two-factor on, a reset without a code is refused and spends nothing:
// the same token works with a backup code from the vault, which is then
// marked used.
func TestResetWithTOTPNeedsACode(t *testing.T) {
	e, ae := devMailEnv(t)
	e.signup(ae, "", "otto")
	s, err := ae.StartMFASetup(e.ctx, "", false)
	if err != nil {
		t.Fatal(err)
	}
	code, _ := totp.GenerateCode(s.Secret, e.clock.Now())
	codes, err := ae.EnableMFA(e.ctx, "", code)
	if err != nil || len(codes) == 0 {
		t.Fatalf("enable: %v", err)
	}
	if _, err := ae.ForgotPassword(e.ctx, RecoveryTarget{}); err != nil {
		t.Fatal(err)
	}
	tok := e.mailToken("otto@example.com", "password-reset")
	_, err = ae.ResetPassword(e.ctx, ResetRequest{Token: tok, NewPassword: newPassword})
	if !errors.Is(err, client.ErrMFARequired) {
		t.Fatalf("reset without a code: %v, want ErrMFARequired", err)
	}
	_, err = ae.ResetPassword(e.ctx, ResetRequest{Token: tok, NewPassword: newPassword, Code: "000000"})
	if !errors.Is(err, client.ErrInvalidCode) {
		t.Fatalf("reset with a wrong code: %v, want ErrInvalidCode", err)
	}
	if _, err = ae.ResetPassword(e.ctx, ResetRequest{Token: tok, NewPassword: newPassword, UseBackupCode: true}); err != nil {
		t.Fatalf("reset with a backup code: %v", err)
	}
	b, err := ae.SavedBackupCodes(e.ctx, "")
	if err != nil || b.Remaining() != len(codes)-1 {
		t.Fatalf("backup codes after the reset: %v, %v", b, err)
	}
}

// Verifying by token records it on the profile with that address, for
// status; a change of address makes it unverified again.
func TestVerifyAndChangeEmail(t *testing.T) {
	e, ae := devMailEnv(t)
	e.signup(ae, "", "carol")
	p, _ := ae.Profile("")
	if p.Email != "carol@example.com" || p.EmailVerified == nil || *p.EmailVerified {
		t.Fatalf("after signup: email %q verified %v; want carol@example.com, false", p.Email, p.EmailVerified)
	}
	tok := e.mailToken("carol@example.com", "verify-email")
	st, err := ae.VerifyEmail(e.ctx, "", "", tok)
	if err != nil || !st.Verified {
		t.Fatalf("verify: %+v, %v", st, err)
	}
	if p, _ := ae.Profile(""); p.EmailVerified == nil || !*p.EmailVerified {
		t.Fatal("the profile does not record the verified address")
	}
	if _, err := ae.VerifyEmail(e.ctx, "", "", tok); !errors.Is(err, client.ErrTokenUsed) {
		t.Fatalf("second use: %v, want ErrTokenUsed", err)
	}
	if err := ae.ResendVerification(e.ctx, RecoveryTarget{}); !errors.Is(err, client.ErrConflict) ||
		!strings.Contains(err.Error(), "already verified") {
		t.Fatalf("resend when verified: %v", err)
	}

	if _, err := ae.ChangeEmail(e.ctx, "", "carol2@example.com", "wrong password"); !errors.Is(err, client.ErrInvalidCredentials) {
		t.Fatalf("change with a wrong password: %v", err)
	}
	st, err = ae.ChangeEmail(e.ctx, "", "carol2@example.com", goodPassword)
	if err != nil || st.Verified || st.Email != "carol2@example.com" {
		t.Fatalf("change: %+v, %v", st, err)
	}
	if p, _ := ae.Profile(""); p.Email != "carol2@example.com" || p.EmailVerified == nil || *p.EmailVerified {
		t.Fatalf("profile after the change: %q %v", p.Email, p.EmailVerified)
	}
	tok = e.mailToken("carol2@example.com", "verify-email")
	if _, err := ae.VerifyEmail(e.ctx, "", "", tok); err != nil {
		t.Fatal(err)
	}
}

func TestChangePassword(t *testing.T) {
	e, ae := devMailEnv(t)
	e.signup(ae, "", "dora")
	if err := ae.ChangePassword(e.ctx, "", "wrong password", newPassword); err == nil {
		t.Fatal("a wrong current password was accepted")
	}
	if err := ae.ChangePassword(e.ctx, "", goodPassword, newPassword); err != nil {
		t.Fatal(err)
	}
	if st, _ := ae.ProfileStatus(e.ctx, ""); st.State != StateLoggedIn {
		t.Fatalf("state after a change: %s", st.State)
	}
	if _, err := e.client.Login(e.ctx, "dora", newPassword); err != nil {
		t.Fatalf("new password: %v", err)
	}
}

// Turning two-factor on with end_other_sessions leaves no other session;
// without it the count of the others comes back, and EndOtherSessions ends
// them.
func TestMFAEndOtherSessions(t *testing.T) {
	for _, end := range []bool{true, false} {
		t.Run(map[bool]string{true: "ending", false: "keeping"}[end], func(t *testing.T) {
			e, ae := devMailEnv(t)
			e.signup(ae, "", "eve")
			other, err := e.client.Login(e.ctx, "eve", goodPassword)
			if err != nil {
				t.Fatal(err)
			}
			s, err := ae.StartMFASetup(e.ctx, "", false)
			if err != nil {
				t.Fatal(err)
			}
			code, _ := totp.GenerateCode(s.Secret, e.clock.Now())
			res, err := ae.EnableMFAEnding(e.ctx, "", code, end)
			if err != nil {
				t.Fatal(err)
			}
			want := 1
			if end {
				want = 0
			}
			if res.OtherSessions != want {
				t.Fatalf("other sessions = %d, want %d", res.OtherSessions, want)
			}
			if !end {
				if n, err := ae.EndOtherSessions(e.ctx, ""); err != nil || n != 1 {
					t.Fatalf("EndOtherSessions = %d, %v", n, err)
				}
			}
			if _, err := e.client.Refresh(e.ctx, other.RefreshToken); err == nil {
				t.Fatal("the other session survived")
			}
			if st, _ := ae.ProfileStatus(e.ctx, ""); st.State != StateLoggedIn {
				t.Fatalf("own session: %s", st.State)
			}
		})
	}
}

// A server older than end_other_sessions ignores the flag and says nothing
// of the other sessions: then latch ends them itself, rather than claiming
// they are gone.
func TestMFAEndOtherSessionsOlderServer(t *testing.T) {
	e, ae := devMailEnv(t)
	target, _ := url.Parse(e.http.URL)
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		r := pr.Out
		if r.URL.Path == "/auth/mfa/enable" {
			var body map[string]any
			_ = json.NewDecoder(r.Body).Decode(&body)
			delete(body, "end_other_sessions")
			raw, _ := json.Marshal(body)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(raw)), int64(len(raw))
		}
	}}
	proxy.ModifyResponse = func(w *http.Response) error {
		if w.Request.URL.Path != "/auth/mfa/enable" || w.StatusCode != http.StatusOK {
			return nil
		}
		var body map[string]any
		_ = json.NewDecoder(w.Body).Decode(&body)
		delete(body, "other_sessions")
		raw, _ := json.Marshal(body)
		w.Body, w.ContentLength = io.NopCloser(bytes.NewReader(raw)), int64(len(raw))
		w.Header.Set("Content-Length", strconv.Itoa(len(raw)))
		return nil
	}
	old := httptest.NewServer(proxy)
	t.Cleanup(old.Close)
	oc, err := client.New(old.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ae.Client = func(string) (*client.Client, error) { return oc, nil }

	e.signup(ae, "", "olga")
	other, err := e.client.Login(e.ctx, "olga", goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ae.StartMFASetup(e.ctx, "", false)
	if err != nil {
		t.Fatal(err)
	}
	code, _ := totp.GenerateCode(s.Secret, e.clock.Now())
	res, err := ae.EnableMFAEnding(e.ctx, "", code, true)
	if err != nil || res.OtherSessions != 0 {
		t.Fatalf("enable = %+v, %v", res, err)
	}
	if _, err := e.client.Refresh(e.ctx, other.RefreshToken); err == nil {
		t.Fatal("the other session survived")
	}
}
