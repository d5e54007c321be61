package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// signup → mfa setup → enable (code computed from the secret) → logout →
// login with a TOTP code → logout → login with --use-backup-code → status
// shows 9 codes left.
func TestE2EMFA(t *testing.T) {
	e := newE2E(t, time.Minute)
	e.signup(e.srv.URL, "mia")

	var setup struct{ Secret, URI string }
	if err := json.Unmarshal([]byte(e.must("", "mfa", "setup", "--json")), &setup); err != nil {
		t.Fatal(err)
	}
	if setup.Secret == "" || !strings.HasPrefix(setup.URI, "otpauth://totp/") || !strings.Contains(setup.URI, "mia") {
		t.Fatalf("setup = %+v", setup)
	}
	if r := e.run("", "mfa", "enable", "--code", "000000"); r.code != exitError {
		t.Fatalf("enable with a wrong code: exit %d %s", r.code, r.stderr)
	}
	now := time.Now()
	code, err := totp.GenerateCode(setup.Secret, now)
	if err != nil {
		t.Fatal(err)
	}
	out := e.must("", "mfa", "enable", "--code", code)
	if !strings.Contains(out, "10 backup codes saved") {
		t.Fatalf("enable: %s", out)
	}
	if st := e.status(); !st.MFA || st.BackupCodesLeft == nil || *st.BackupCodesLeft != 10 {
		t.Fatalf("status after enable: %+v", st)
	}

	e.must("", "logout")
	// Without a second factor and no terminal, login says which flags to use.
	r := e.run(e2ePassword+"\n", "login", "--password-stdin")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--code") {
		t.Fatalf("login without a code: exit %d %s", r.code, r.stderr)
	}
	// The enable code's time step is spent (replay); the next step's code is
	// within the server's ±1 window.
	next, _ := totp.GenerateCode(setup.Secret, now.Add(30*time.Second))
	e.must(e2ePassword+"\n", "login", "--password-stdin", "--code", next)
	e.checkToken(e.token(), "mia")

	e.must("", "logout")
	r = e.run(e2ePassword+"\n", "login", "--password-stdin", "--use-backup-code")
	if r.code != 0 || !strings.Contains(r.stderr, "9 left") {
		t.Fatalf("login with a backup code: exit %d %s", r.code, r.stderr)
	}
	e.checkToken(e.token(), "mia")
	st := e.status()
	if st.BackupCodesLeft == nil || *st.BackupCodesLeft != 9 || !st.MFA {
		t.Fatalf("status: %+v", st)
	}
	if text := e.must("", "status"); !strings.Contains(text, "two-factor: on, 9 backup codes left") {
		t.Fatalf("status text:\n%s", text)
	}
	codes := e.must("", "mfa", "codes", "--reveal")
	if !strings.Contains(codes, "9 of 10 backup codes left") || strings.Count(codes, "\n  ") != 9 {
		t.Fatalf("mfa codes --reveal:\n%s", codes)
	}
}

// Other services' backup codes: import, list, use one at a time.
func TestE2ECodes(t *testing.T) {
	e := newE2E(t, time.Minute)
	e.must("aaaa-1111\n\n  bbbb-2222 \n", "codes", "import", "--label", "github")
	if got := e.must("", "codes", "use", "--label", "github"); got != "aaaa-1111\n" {
		t.Fatalf("first use = %q", got)
	}
	if got := e.must("", "codes", "list"); !strings.Contains(got, "github") || !strings.Contains(got, "1 of 2 left") {
		t.Fatalf("list = %q", got)
	}
	if got := e.must("", "codes", "use", "--label", "github"); got != "bbbb-2222\n" {
		t.Fatalf("second use = %q", got)
	}
	if r := e.run("", "codes", "use", "--label", "github"); r.code != exitError || !strings.Contains(r.stderr, "no unused") {
		t.Fatalf("exhausted: exit %d %s", r.code, r.stderr)
	}
}
