package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/internal/mailpit"
	"github.com/latch-dev/latch/server"
)

// The recovery end-to-end tests: the built latch binary, a real latch
// server that sends its mail over SMTP to a real mailpit, and the mail read
// back through mailpit's HTTP API.

const e2eNewPassword = "a fresh staple for the battery horse"

// newMailE2E is newE2E with the server's mail going to mp over SMTP; mod
// adjusts the server's configuration.
func newMailE2E(t *testing.T, mp *mailpit.Mailpit, mod ...func(*server.Config)) *e2e {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	hs := httptest.NewUnstartedServer(nil)
	cfg := server.Config{
		DBPath:    server.MemoryDB,
		Issuer:    "http://" + hs.Listener.Addr().String(),
		SecretKey: bytes.Repeat([]byte{9}, 32),
		AccessTTL: time.Minute,
		RateIP:    -1, RateAccount: -1,
		Mail: server.MailConfig{SMTPURL: mp.SMTPURL(), From: "latch <latch@example.com>"},
	}
	for _, f := range mod {
		f(&cfg)
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		hs.Close()
		t.Fatal(err)
	}
	hs.Config.Handler = srv.Handler()
	hs.Start()
	t.Cleanup(func() { hs.Close(); srv.Close() })
	cl, err := client.New(hs.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &e2e{t: t, ctx: ctx, bin: latchBinary(t), home: newHome(t), srv: hs, client: cl}
}

// machine is another latch home on the same server: another device of the
// same user.
func (e *e2e) machine() *e2e {
	o := *e
	o.home = newHome(e.t)
	return &o
}

// mailToken waits for the mail to `to` whose subject holds subject and
// returns the token it carries.
func mailToken(t *testing.T, mp *mailpit.Mailpit, to, subject string) string {
	t.Helper()
	m := mp.WaitFor(t, to, subject)
	tok := client.MailToken(m.Text)
	if tok == "" {
		t.Fatalf("mail %q to %s holds no token:\n%s", m.Subject, to, m.Text)
	}
	return tok
}

// signup → verification mail → latch email verify --token-stdin → status
// says verified; the token works once.
func TestE2EEmailVerify(t *testing.T) {
	mp := mailpit.Start(t)
	e := newMailE2E(t, mp)
	e.signup(e.srv.URL, "vera")

	st := e.status()
	if st.Email != "vera@example.com" || st.EmailVerified == nil || *st.EmailVerified {
		t.Fatalf("status after signup: email %q verified %v", st.Email, st.EmailVerified)
	}
	if out := e.must("", "status"); !strings.Contains(out, "email:      vera@example.com (not verified — latch email resend)") {
		t.Fatalf("status text:\n%s", out)
	}
	tok := mailToken(t, mp, "vera@example.com", "confirm your email")

	// No terminal and no --token-stdin: a usage error naming the flag.
	if r := e.run("", "email", "verify"); r.code != exitUsage || !strings.Contains(r.stderr, "--token-stdin") {
		t.Fatalf("verify without a token: exit %d %s", r.code, r.stderr)
	}
	if out := e.must(tok+"\n", "email", "verify", "--token-stdin"); !strings.Contains(out, "vera@example.com is verified") {
		t.Fatalf("verify: %s", out)
	}
	st = e.status()
	if st.EmailVerified == nil || !*st.EmailVerified {
		t.Fatalf("status after verify: %+v", st)
	}
	if out := e.must("", "status"); !strings.Contains(out, "vera@example.com (verified)") {
		t.Fatalf("status text:\n%s", out)
	}
	r := e.run(tok+"\n", "email", "verify", "--token-stdin")
	if r.code != exitError || !strings.Contains(r.stderr, "already used") || strings.Contains(r.stderr, tok) {
		t.Fatalf("second verify: exit %d %s", r.code, r.stderr)
	}
	if r := e.run("", "email", "resend"); r.code != exitError || !strings.Contains(r.stderr, "already verified") {
		t.Fatalf("resend when verified: exit %d %s", r.code, r.stderr)
	}
}

// forgot → mail → latch password reset --token-stdin → this profile is
// logged out (latch token exits 4), another machine's session is dead, the
// old password is refused and the new one works.
func TestE2EPasswordReset(t *testing.T) {
	mp := mailpit.Start(t)
	e := newMailE2E(t, mp)
	e.signup(e.srv.URL, "rita")
	other := e.machine()
	other.must(e2ePassword+"\n", "login", "--server", e.srv.URL, "-u", "rita", "--password-stdin")

	out := e.must("", "password", "forgot")
	if !strings.Contains(out, "latch password reset --token-stdin") {
		t.Fatalf("forgot: %s", out)
	}
	tok := mailToken(t, mp, "rita@example.com", "reset your password")

	// A policy-breaking password is refused and spends nothing.
	r := e.run(tok+"\nshort\n", "password", "reset", "--token-stdin", "--password-stdin")
	if r.code != exitError || !strings.Contains(r.stderr, "new_password") {
		t.Fatalf("weak password: exit %d %s", r.code, r.stderr)
	}
	r = e.run(tok+"\n"+e2eNewPassword+"\n", "password", "reset", "--token-stdin", "--password-stdin")
	if r.code != 0 || !strings.Contains(r.stdout, "Password reset") || !strings.Contains(r.stdout, `Profile "default" was logged out here`) {
		t.Fatalf("reset: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, s := range []string{tok, e2eNewPassword} {
		if strings.Contains(r.stdout+r.stderr, s) {
			t.Fatal("reset printed a secret")
		}
	}
	if r := e.run("", "token"); r.code != exitLogin {
		t.Fatalf("token on the reset profile: exit %d, want %d\n%s", r.code, exitLogin, r.stderr)
	}
	if r := other.run("", "api", "/auth/me"); r.code != exitLogin {
		t.Fatalf("the other machine's session: exit %d, want %d\n%s%s", r.code, exitLogin, r.stdout, r.stderr)
	}
	if r := e.run(tok+"\n"+e2eNewPassword+"x\n", "password", "reset", "--token-stdin", "--password-stdin"); r.code != exitError ||
		!strings.Contains(r.stderr, "already used") {
		t.Fatalf("token reused: exit %d %s", r.code, r.stderr)
	}
	if r := e.run(e2ePassword+"\n", "login", "--password-stdin"); r.code != exitError || !strings.Contains(r.stderr, "wrong") {
		t.Fatalf("old password: exit %d %s", r.code, r.stderr)
	}
	e.must(e2eNewPassword+"\n", "login", "--password-stdin")
	e.checkToken(e.token(), "rita")
	mp.WaitFor(t, "rita@example.com", "your password was reset")
}

// The same with two-factor on: mfa enable --end-other-sessions ends the
// other machine's session; a reset without a code is refused and spends
// nothing; with --code it works; the next login takes a saved backup code.
func TestE2EPasswordResetTOTP(t *testing.T) {
	mp := mailpit.Start(t)
	e := newMailE2E(t, mp)
	e.signup(e.srv.URL, "tina")
	other := e.machine()
	other.must(e2ePassword+"\n", "login", "--server", e.srv.URL, "-u", "tina", "--password-stdin")

	var setup struct{ Secret string }
	if err := json.Unmarshal([]byte(e.must("", "mfa", "setup", "--json")), &setup); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	code, _ := totp.GenerateCode(setup.Secret, now)
	out := e.must("", "mfa", "enable", "--code", code, "--end-other-sessions")
	if !strings.Contains(out, "Every other session of the account was ended") {
		t.Fatalf("enable: %s", out)
	}
	if r := other.run("", "api", "/auth/me"); r.code != exitLogin {
		t.Fatalf("the other machine after enable --end-other-sessions: exit %d\n%s", r.code, r.stderr)
	}

	e.must("", "password", "forgot", "-u", "tina@example.com")
	tok := mailToken(t, mp, "tina@example.com", "reset your password")
	input := tok + "\n" + e2eNewPassword + "\n"
	r := e.run(input, "password", "reset", "--token-stdin", "--password-stdin")
	if r.code != exitError || !strings.Contains(r.stderr, "--code") || !strings.Contains(r.stderr, "still good") {
		t.Fatalf("reset without a code: exit %d %s", r.code, r.stderr)
	}
	if r := e.run(input, "password", "reset", "--token-stdin", "--password-stdin", "--code", "000000"); r.code != exitError ||
		!strings.Contains(r.stderr, "code is wrong") {
		t.Fatalf("reset with a wrong code: exit %d %s", r.code, r.stderr)
	}
	// The enable code's time step is spent; the next one is in the window.
	next, _ := totp.GenerateCode(setup.Secret, now.Add(30*time.Second))
	r = e.run(input, "password", "reset", "--token-stdin", "--password-stdin", "--code", next)
	if r.code != 0 || !strings.Contains(r.stdout, "logged out here") {
		t.Fatalf("reset with a code: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := e.run("", "token"); r.code != exitLogin {
		t.Fatalf("token after the reset: exit %d", r.code)
	}
	if r := e.run(e2ePassword+"\n", "login", "--password-stdin", "--use-backup-code"); r.code != exitError {
		t.Fatalf("old password: exit %d %s", r.code, r.stderr)
	}
	e.must(e2eNewPassword+"\n", "login", "--password-stdin", "--use-backup-code")
	e.checkToken(e.token(), "tina")
}

// latch password change keeps the session, mails a notice, and the new
// password is the one that works; latch email change makes the address
// unverified until its new mail is confirmed.
func TestE2EChangePasswordAndEmail(t *testing.T) {
	mp := mailpit.Start(t)
	e := newMailE2E(t, mp)
	e.signup(e.srv.URL, "carl")

	if r := e.run("nope-not-it\n"+e2eNewPassword+"\n", "password", "change", "--password-stdin"); r.code != exitError ||
		!strings.Contains(r.stderr, "current password is wrong") {
		t.Fatalf("change with a wrong password: exit %d %s", r.code, r.stderr)
	}
	e.must(e2ePassword+"\n"+e2eNewPassword+"\n", "password", "change", "--password-stdin")
	mp.WaitFor(t, "carl@example.com", "your password was changed")
	e.checkToken(e.token(), "carl")

	out := e.must(e2eNewPassword+"\n", "email", "change", "carl2@example.com", "--password-stdin")
	if !strings.Contains(out, "carl2@example.com (not verified yet)") {
		t.Fatalf("email change: %s", out)
	}
	mp.WaitFor(t, "carl@example.com", "your email address was changed")
	tok := mailToken(t, mp, "carl2@example.com", "confirm your email")
	if st := e.status(); st.Email != "carl2@example.com" || st.EmailVerified == nil || *st.EmailVerified {
		t.Fatalf("status after the change: %q %v", st.Email, st.EmailVerified)
	}
	e.must(tok+"\n", "email", "verify", "--token-stdin")
	if st := e.status(); st.EmailVerified == nil || !*st.EmailVerified {
		t.Fatalf("status after verify: %v", st.EmailVerified)
	}
}

// A server that refuses login until the address is verified: the refusal
// says what to do; resend works without a session; verify by token works
// without a profile (--server); then login works.
func TestE2ERequireVerifiedEmail(t *testing.T) {
	mp := mailpit.Start(t)
	e := newMailE2E(t, mp, func(c *server.Config) { c.RequireVerifiedEmail = true })
	r := e.run(e2ePassword+"\n", "signup", "--server", e.srv.URL, "-u", "nina", "--email", "nina@example.com", "--password-stdin")
	// The account is made: a success that says what comes next.
	if r.code != 0 || !strings.Contains(r.stdout, "Created account nina") || !strings.Contains(r.stderr, "once your email is verified") ||
		!strings.Contains(r.stderr, "latch email verify --token-stdin") {
		t.Fatalf("signup on a verified-only server: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	first := mailToken(t, mp, "nina@example.com", "confirm your email")
	r = e.run(e2ePassword+"\n", "login", "--server", e.srv.URL, "-u", "nina", "--password-stdin")
	if r.code != exitError || !strings.Contains(r.stderr, "latch email resend -u NAME --server URL") {
		t.Fatalf("login before verifying: exit %d %s", r.code, r.stderr)
	}
	if r := e.run("", "email", "resend", "--server", e.srv.URL); r.code != exitUsage || !strings.Contains(r.stderr, "-u") {
		t.Fatalf("resend --server without -u: exit %d %s", r.code, r.stderr)
	}
	out := e.must("", "email", "resend", "-u", "nina", "--server", e.srv.URL)
	if !strings.Contains(out, "If nina has an unverified account") {
		t.Fatalf("resend: %s", out)
	}
	// Two verification mails now; the newest one's token works.
	var tok string
	for range 500 {
		var n int
		for _, m := range mp.Messages(t) {
			if len(m.To) == 1 && m.To[0] == "nina@example.com" && strings.Contains(m.Subject, "confirm your email") {
				n++
				tok = client.MailToken(m.Text)
			}
		}
		if n >= 2 && tok != first {
			break
		}
		select {
		case <-e.ctx.Done():
			t.Fatal(e.ctx.Err())
		case <-time.After(10 * time.Millisecond): // waiting on the outbox worker
		}
	}
	e.must(tok+"\n", "email", "verify", "--token-stdin", "--server", e.srv.URL)
	e.must(e2ePassword+"\n", "login", "--server", e.srv.URL, "-u", "nina", "--password-stdin")
	if st := e.status(); st.EmailVerified == nil || !*st.EmailVerified {
		t.Fatalf("status after verify and login: %v", st.EmailVerified)
	}

	// Moving to an address another account has: the server answers as if
	// it had, and latch says what the account really holds.
	e.must(e2ePassword+"\n", "signup", "--server", e.srv.URL, "-u", "omar", "--email", "omar@example.com", "--password-stdin", "--no-login")
	out = e.must(e2ePassword+"\n", "email", "change", "omar@example.com", "--password-stdin", "-p", "default")
	if !strings.Contains(out, "still nina@example.com") {
		t.Fatalf("email change to a taken address: %s", out)
	}
}
