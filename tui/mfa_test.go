package tui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// code is the TOTP code of secret at the harness's clock.
func (h *harness) code(secret string) string {
	h.t.Helper()
	c, err := totp.GenerateCode(secret, h.clock.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// enableMFA turns two-factor on for profile through the flows, and moves
// the clock to the next 30 s step so that a login's code is not a replay.
func (h *harness) enableMFA(profile string) (secret string, codes []string) {
	h.t.Helper()
	s, err := h.env.StartMFASetup(h.ctx, profile, false)
	if err != nil {
		h.t.Fatal(err)
	}
	codes, err = h.env.EnableMFA(h.ctx, profile, h.code(s.Secret))
	if err != nil {
		h.t.Fatal(err)
	}
	h.clock.Advance(30 * time.Second)
	return s.Secret, codes
}

// wrongCode is a code that is not want.
func wrongCode(want string) string {
	n, _ := strconv.Atoi(want)
	return fmt.Sprintf("%06d", (n+1)%1000000)
}

var ctrlO = tea.KeyPressMsg{Code: 'o', Mod: tea.ModCtrl}

func TestMFASetupWrongThenRightCode(t *testing.T) {
	h := newHarness(t)
	p := h.signup("demo")
	d := newDriver(t, h.app("demo", ""), 80, 24)
	d.send(NavigateMsg{To: pageDashboard, Profile: p})
	d.wantScreen("MFA off (m sets it up)")
	d.keys("m")
	setup, ok := d.top().(*mfaSetup)
	if !ok || setup.setup == nil {
		t.Fatalf("m opened %T without a setup:\n%s", d.top(), d.screen())
	}
	secret := setup.setup.Secret
	grouped := strings.Fields(setup.setup.Grouped())
	d.wantScreen("Set up two-factor", "Secret", grouped[0]+" "+grouped[1], "█")
	d.notScreen("enlarge")

	right := h.code(secret)
	d.typ(wrongCode(right))
	d.keys("enter")
	d.wantScreen("That code was not accepted")
	if _, ok := d.top().(*mfaSetup); !ok {
		t.Fatalf("a wrong code left setup for %T", d.top())
	}

	d.typ(right)
	d.keys("enter")
	d.wantScreen("Two-factor is on", "Saved to your vault (memory)")
	saved, err := h.env.SavedBackupCodes(h.ctx, "demo")
	if err != nil || saved.Remaining() != 10 {
		t.Fatalf("saved codes: %v, %v", saved, err)
	}
	for _, c := range saved.Codes {
		d.wantScreen(c.Code)
	}
	d.notScreen(grouped[0] + " " + grouped[1]) // the secret is gone once enrolled

	d.keys("enter")
	if _, ok := d.top().(*dashboard); !ok {
		t.Fatalf("enter after enrolment went to %T", d.top())
	}
	d.wantScreen("MFA on (b: backup codes)", "Two-factor is on")
	d.notScreen(saved.Codes[0].Code)
}

func TestMFASetupNarrowAsksToEnlarge(t *testing.T) {
	h := newHarness(t)
	p := h.signup("demo")
	d := newDriver(t, h.app("demo", ""), 50, 24)
	d.send(NavigateMsg{To: pageMFASetup, Profile: p})
	secret := d.top().(*mfaSetup).setup.Grouped()
	d.wantScreen("too small for the QR code", strings.Fields(secret)[0])
	d.notScreen("█")
	checkFits(t, d, 50, 24)
}

// loginToMFA logs alice out and back in with her password, which stops at
// the second step.
func loginToMFA(t *testing.T, h *harness) *driver {
	t.Helper()
	if _, err := h.env.Logout(h.ctx, "demo", false, false); err != nil {
		t.Fatal(err)
	}
	d := newDriver(t, h.app("demo", ""), 80, 24)
	d.keys("enter")
	d.typ(testPassword)
	d.keys("enter")
	if _, ok := d.top().(*mfa); !ok {
		t.Fatalf("the password step went to %T:\n%s", d.top(), d.screen())
	}
	d.wantScreen("Second factor", "The password was right")
	return d
}

func TestMFALoginWithCode(t *testing.T) {
	h := newHarness(t)
	h.signup("demo")
	secret, _ := h.enableMFA("demo")
	d := loginToMFA(t, h)

	d.typ(wrongCode(h.code(secret)))
	d.keys("enter")
	d.wantScreen("The code is wrong or was already used", "attempts left")

	d.typ(h.code(secret))
	d.keys("enter")
	if _, ok := d.top().(*dashboard); !ok {
		t.Fatalf("a right code went to %T:\n%s", d.top(), d.screen())
	}
	d.wantScreen("Logged in as alice.", "MFA on")
	if st, _ := h.env.ProfileStatus(h.ctx, "demo"); st.State != flows.StateLoggedIn {
		t.Fatalf("profile state %s after the second step, want logged in", st.State)
	}
}

func TestMFALoginWithSavedBackupCode(t *testing.T) {
	h := newHarness(t)
	h.signup("demo")
	_, codes := h.enableMFA("demo")
	d := loginToMFA(t, h)

	d.send(ctrlO)
	d.wantScreen("the next unused backup code from your vault")
	d.notScreen(codes[0]) // filled, not shown
	if got := d.top().(*mfa).input.Value(); got != codes[0] {
		t.Fatalf("ctrl+o filled %q, want the first saved code", got)
	}
	d.keys("enter")
	if _, ok := d.top().(*dashboard); !ok {
		t.Fatalf("the saved backup code went to %T:\n%s", d.top(), d.screen())
	}
	saved, err := h.env.SavedBackupCodes(h.ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if saved.Remaining() != 9 || saved.Codes[0].State != "used" {
		t.Fatalf("after the login: %d left, first %q; want 9 and used", saved.Remaining(), saved.Codes[0].State)
	}
}

func TestMFALoginExpiredGoesBackToPassword(t *testing.T) {
	h := newHarness(t)
	h.signup("demo")
	secret, _ := h.enableMFA("demo")
	d := loginToMFA(t, h)
	for range 10 {
		if _, ok := d.top().(*mfa); !ok {
			break
		}
		d.typ(wrongCode(h.code(secret)))
		d.keys("enter")
	}
	if _, ok := d.top().(*login); !ok {
		t.Fatalf("after many wrong codes the screen is %T:\n%s", d.top(), d.screen())
	}
	d.wantScreen("log in again with your password")
}

func TestBackupCodesRevealAfterConfirm(t *testing.T) {
	h := newHarness(t)
	p := h.signup("demo")
	_, codes := h.enableMFA("demo")
	d := newDriver(t, h.app("demo", ""), 80, 24)
	d.send(NavigateMsg{To: pageDashboard, Profile: p})
	d.keys("b")
	d.wantScreen("10 of 10 unused", "in your vault (memory)", "Press v to reveal")
	d.notScreen(codes[0])
	d.keys("v")
	d.wantScreen("Show the backup codes on screen?")
	d.notScreen(codes[0])
	d.keys("n")
	d.notScreen(codes[0], "Show the backup codes")
	d.keys("v", "y")
	for _, c := range codes {
		d.wantScreen(c)
	}
	d.keys("v")
	d.notScreen(codes[0])
	checkFits(t, d, 80, 24)
}

func checkFits(t *testing.T, d *driver, w, h int) {
	t.Helper()
	lines := strings.Split(d.screen(), "\n")
	if len(lines) != h {
		t.Errorf("%d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if n := len([]rune(l)); n > w {
			t.Errorf("line %d is %d cells wide: %q", i, n, l)
		}
	}
}

// goldenSetup is a fixed secret, so that the golden's QR code and secret do
// not depend on the server's randomness.
var goldenSetup = &flows.MFASetup{Secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
	URI: "otpauth://totp/latch%20%28127.0.0.1%29:alice?algorithm=SHA1&digits=6&issuer=latch+%28127.0.0.1%29&period=30&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}

func TestGoldenMFASetup(t *testing.T) {
	h := newHarness(t)
	p := h.signup("demo")
	g := startGolden(t, h.app("demo", ""), 80, 24)
	g.tm.Send(NavigateMsg{To: pageMFASetup, Profile: p})
	g.wait("Set up two-factor", "Secret")
	g.tm.Send(MFASetupMsg{Setup: goldenSetup})
	g.tm.Type("123")
	g.wait("JBSW Y3DP", "123")
	g.finish()
}

func TestGoldenBackupCodes(t *testing.T) {
	h := newHarness(t)
	p := h.signup("demo")
	p.MFA = true
	b := flows.BackupCodes{Saved: h.clock.Now().Add(-2 * time.Hour).Unix()}
	for i := range 10 {
		c := flows.BackupCode{Code: fmt.Sprintf("%05d-abcd%d", i*1111, i)}
		if i < 2 {
			c.State = "used"
		}
		b.Codes = append(b.Codes, c)
	}
	raw, _ := json.Marshal(b)
	if err := h.env.Secrets.Set(h.ctx, "profile/demo/backup-codes", raw); err != nil {
		t.Fatal(err)
	}
	g := startGolden(t, h.app("demo", ""), 80, 24)
	g.tm.Send(NavigateMsg{To: pageBackupCodes, Profile: p})
	g.wait("8 of 10 unused", "Press v")
	g.tm.Type("v")
	g.wait("Show the backup codes")
	g.tm.Type("y")
	g.wait("00000-abcd0")
	g.finish()
}

// failingBackupVault refuses to save backup codes, as a full or locked
// keyring would.
type failingBackupVault struct{ vault.Secrets }

func (f failingBackupVault) Set(ctx context.Context, key string, value []byte) error {
	if strings.HasSuffix(key, "/backup-codes") {
		return errors.New("keyring is locked")
	}
	return f.Secrets.Set(ctx, key, value)
}

func TestMFASetupCodesNotSavedSaysWriteThemDown(t *testing.T) {
	h := newHarness(t)
	p := h.signup("demo")
	h.env.Secrets = failingBackupVault{h.env.Secrets}
	d := newDriver(t, h.app("demo", ""), 80, 24)
	d.send(NavigateMsg{To: pageMFASetup, Profile: p})
	d.typ(h.code(d.top().(*mfaSetup).setup.Secret))
	d.keys("enter")
	d.wantScreen("Two-factor is on", "could not be saved", "(keyring is", "write them down now")
	d.notScreen("Saved to your vault")
	if codes := d.top().(*mfaSetup).codes; len(codes) != 10 {
		t.Fatalf("%d codes shown, want 10", len(codes))
	}
}

// The QR code holds the server's key without the defaults spelled out.
func TestQRContentKeepsTheKey(t *testing.T) {
	short := qrContent(goldenSetup.URI)
	if len(short) >= len(goldenSetup.URI) {
		t.Fatalf("qrContent did not shorten %q", short)
	}
	for _, uri := range []string{goldenSetup.URI, short} {
		k, err := otp.NewKeyFromURL(uri)
		if err != nil {
			t.Fatal(err)
		}
		if k.Secret() != goldenSetup.Secret || k.Issuer() != "latch (127.0.0.1)" || k.AccountName() != "alice" ||
			k.Period() != 30 || k.Digits() != otp.DigitsSix || k.Algorithm() != otp.AlgorithmSHA1 {
			t.Fatalf("%s reads as %s / %s / %s", uri, k.Issuer(), k.AccountName(), k.Secret())
		}
	}
	if odd := strings.Replace(goldenSetup.URI, "digits=6", "digits=8", 1); qrContent(odd) != odd {
		t.Fatal("a URI with non-default digits was rewritten")
	}
}

// The client's message counts the attempts left; the screen must not count
// them a second time ("4 attempts left. 4 attempts left.").
func TestMFAWrongCodeCountsAttemptsOnce(t *testing.T) {
	h := newHarness(t)
	h.signup("demo")
	secret, _ := h.enableMFA("demo")
	d := loginToMFA(t, h)
	d.typ(wrongCode(h.code(secret)))
	d.keys("enter")
	words := strings.Join(strings.Fields(d.screen()), " ")
	if n := strings.Count(words, "attempts left"); n != 1 {
		t.Fatalf("the screen says \"attempts left\" %d times, want once:\n%s", n, d.screen())
	}
	if !strings.Contains(words, "4 attempts left.") {
		t.Fatalf("the screen does not say how many attempts are left:\n%s", d.screen())
	}
}
