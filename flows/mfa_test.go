package flows

import (
	"errors"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/latch-dev/latch/client"
)

// mfaEnv signs up "profile" and enrols it in two-factor, with the secret
// saved in the vault when store is set. It returns the secret and the codes.
func mfaEnv(t *testing.T, store bool) (*env, *Env, string, []string) {
	t.Helper()
	e := newEnv(t)
	ae := e.accountEnv()
	if _, err := ae.Signup(e.ctx, SignupRequest{Server: e.http.URL, Username: "otto", Email: "otto@example.com", Password: goodPassword}); err != nil {
		t.Fatal(err)
	}
	s, err := ae.StartMFASetup(e.ctx, "", store)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Grouped()) != len(s.Secret)+len(s.Secret)/4-1 {
		t.Fatalf("grouped %q", s.Grouped())
	}
	code, _ := totp.GenerateCode(s.Secret, e.clock.Now())
	codes, err := ae.EnableMFA(e.ctx, "", code)
	if err != nil || len(codes) != 10 {
		t.Fatalf("enable: %d codes, %v", len(codes), err)
	}
	e.clock.Add(30 * time.Second) // the enable code's step is spent
	return e, ae, s.Secret, codes
}

// pendingLogin logs out and logs in with the password, returning the
// pending second-factor step.
func pendingLogin(t *testing.T, e *env, ae *Env) *LoginResult {
	t.Helper()
	if _, err := ae.Logout(e.ctx, "", false, false); err != nil {
		t.Fatal(err)
	}
	res, err := ae.Login(e.ctx, LoginRequest{Profile: "default", Server: e.http.URL, Identifier: "otto", Password: goodPassword})
	if err != nil || res.MFA == nil {
		t.Fatalf("login = %+v, %v: want a pending second factor", res, err)
	}
	if st, _ := ae.ProfileStatus(e.ctx, ""); st.State != StateLoggedOut {
		t.Fatalf("a pending login saved a session: %s", st.State)
	}
	return res
}

func TestMFALoginWithTOTP(t *testing.T) {
	e, ae, secret, _ := mfaEnv(t, false)
	if p, _ := ae.Profile(""); !p.MFA {
		t.Fatal("the profile does not record MFA after enable")
	}
	pending := pendingLogin(t, e, ae)
	if _, err := ae.FinishMFA(e.ctx, pending, "000000"); !errors.Is(err, client.ErrInvalidCode) {
		t.Fatalf("wrong code: %v", err)
	}
	code, _ := totp.GenerateCode(secret, e.clock.Now())
	if _, err := ae.FinishMFA(e.ctx, pending, code); err != nil {
		t.Fatal(err)
	}
	if _, err := ae.Me(e.ctx, ""); err != nil {
		t.Fatalf("no session after the second factor: %v", err)
	}
}

// --use-backup-code: the next saved code, marked used only once accepted; a
// code the server refuses is never offered again.
func TestMFABackupCodeFromVault(t *testing.T) {
	e, ae, _, codes := mfaEnv(t, false)
	b, err := ae.SavedBackupCodes(e.ctx, "")
	if err != nil || b.Remaining() != 10 {
		t.Fatalf("saved = %+v, %v", b, err)
	}

	// Spend the first saved code behind latch's back (another device).
	pending := pendingLogin(t, e, ae)
	var mfa *client.MFARequiredError
	if _, err := e.client.Login(e.ctx, "otto", goodPassword); !errors.As(err, &mfa) {
		t.Fatalf("login: %v", err)
	}
	if _, err := e.client.MFAVerify(e.ctx, mfa.Token, codes[0]); err != nil {
		t.Fatal(err)
	}

	if _, err := ae.FinishMFAWithBackupCode(e.ctx, pending); !errors.Is(err, client.ErrInvalidCode) {
		t.Fatalf("a spent code: %v, want ErrInvalidCode", err)
	}
	b, _ = ae.SavedBackupCodes(e.ctx, "")
	if b.Codes[0].State != "refused" || b.Remaining() != 9 {
		t.Fatalf("after a refused code: %+v", b.Codes[0])
	}
	if _, err := ae.FinishMFAWithBackupCode(e.ctx, pending); err != nil {
		t.Fatal(err)
	}
	b, _ = ae.SavedBackupCodes(e.ctx, "")
	if b.Codes[1].State != "used" || b.Remaining() != 8 {
		t.Fatalf("after a used code: %+v", b.Codes[1])
	}
	if _, err := ae.Me(e.ctx, ""); err != nil {
		t.Fatalf("no session after the backup code: %v", err)
	}
}

// --store-secret: latch answers the second factor itself.
func TestMFAStoredSecret(t *testing.T) {
	e, ae, secret, _ := mfaEnv(t, true)
	got, err := ae.TOTPCode(e.ctx, "")
	want, _ := totp.GenerateCode(secret, e.clock.Now())
	if err != nil || got != want {
		t.Fatalf("TOTPCode = %q, %v; want %q", got, err, want)
	}
	pending := pendingLogin(t, e, ae)
	if _, err := ae.FinishMFAWithStoredSecret(e.ctx, pending); err != nil {
		t.Fatal(err)
	}

	e.clock.Add(30 * time.Second)
	code, _ := totp.GenerateCode(secret, e.clock.Now())
	if err := ae.DisableMFA(e.ctx, "", code); err != nil {
		t.Fatal(err)
	}
	if _, err := ae.TOTPCode(e.ctx, ""); !errors.Is(err, ErrNoTOTPSecret) {
		t.Fatalf("secret kept after disable: %v", err)
	}
	if _, err := ae.SavedBackupCodes(e.ctx, ""); !errors.Is(err, ErrNoBackupCodes) {
		t.Fatalf("codes kept after disable: %v", err)
	}
	if p, _ := ae.Profile(""); p.MFA {
		t.Fatal("the profile still records MFA after disable")
	}
}

// A vault that cannot save the backup codes: they are returned anyway, with
// an error saying to write them down.
func TestMFAEnableSaveFailure(t *testing.T) {
	e := newEnv(t)
	ae := e.accountEnv()
	if _, err := ae.Signup(e.ctx, SignupRequest{Server: e.http.URL, Username: "pia", Email: "pia@example.com", Password: goodPassword}); err != nil {
		t.Fatal(err)
	}
	s, err := ae.StartMFASetup(e.ctx, "", false)
	if err != nil {
		t.Fatal(err)
	}
	code, _ := totp.GenerateCode(s.Secret, e.clock.Now())
	// Tokens are valid, so only the codes' write hits the failing vault.
	ae.Secrets = failingSet{e.secrets}
	codes, err := ae.EnableMFA(e.ctx, "", code)
	if len(codes) != 10 || err == nil || !errors.Is(err, errDiskFull) {
		t.Fatalf("enable = %d codes, %v", len(codes), err)
	}
}

func TestImportCodes(t *testing.T) {
	e := newEnv(t)
	ae := e.accountEnv()
	if _, err := ae.ImportCodes(e.ctx, "../x", []string{"a"}); err == nil {
		t.Fatal("a path as a label was accepted")
	}
	if _, err := ae.ImportCodes(e.ctx, "gh", []string{"", "  "}); err == nil {
		t.Fatal("no codes were accepted")
	}
	if n, err := ae.ImportCodes(e.ctx, "gh", []string{" one ", "", "two"}); n != 2 || err != nil {
		t.Fatalf("import = %d, %v", n, err)
	}
	if labels, _ := ae.CodeLabels(); len(labels) != 1 || labels[0] != "gh" {
		t.Fatalf("labels = %v", labels)
	}
	for _, want := range []string{"one", "two"} {
		if got, err := ae.UseLabelCode(e.ctx, "gh"); got != want || err != nil {
			t.Fatalf("use = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := ae.UseLabelCode(e.ctx, "gh"); !errors.Is(err, ErrNoBackupCodes) {
		t.Fatalf("exhausted: %v", err)
	}
}
