package flows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// A login answered with the saved TOTP secret in the time step whose code
// the server just accepted waits for the next step instead of sending the
// same code again (which the server refuses, burning an attempt).
func TestStoredSecretWaitsForAnUnusedStep(t *testing.T) {
	e, ae, secret, _ := mfaEnv(t, true)
	var waits []time.Duration
	ae.Wait = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		e.clock.Add(d)
		return ctx.Err()
	}
	var told []string
	ae.Progress = func(msg string) { told = append(told, msg) }

	e.clock.Add(7 * time.Second) // 7 s into a step
	if _, err := ae.FinishMFAWithStoredSecret(e.ctx, pendingLogin(t, e, ae)); err != nil {
		t.Fatal(err)
	}
	if len(waits) != 0 {
		t.Fatalf("waited %v for a step nobody used", waits)
	}

	e.clock.Add(2 * time.Second) // the same step: its code is spent
	if _, err := ae.FinishMFAWithStoredSecret(e.ctx, pendingLogin(t, e, ae)); err != nil {
		t.Fatalf("the second login in one step: %v", err)
	}
	if len(waits) != 1 || waits[0] != 21*time.Second || len(told) != 1 {
		t.Fatalf("waits %v, told %q; want one wait of 21s, said", waits, told)
	}

	// A code typed in (from latch mfa code, say) counts as spent too.
	e.clock.Add(40 * time.Second)
	waits = nil
	code, _ := totp.GenerateCode(secret, e.clock.Now())
	if _, err := ae.FinishMFA(e.ctx, pendingLogin(t, e, ae), code); err != nil {
		t.Fatal(err)
	}
	if got, err := ae.TOTPCode(e.ctx, ""); err != nil || got == code {
		t.Fatalf("TOTPCode = %q, %v after %q was accepted in this step", got, err, code)
	}
	if len(waits) != 1 || waits[0] <= 0 || waits[0] > 30*time.Second {
		t.Fatalf("waits %v, want one within a step", waits)
	}

	// The wait ends with the context.
	ae.Wait = nil
	code, _ = totp.GenerateCode(secret, e.clock.Now())
	if _, err := ae.FinishMFA(e.ctx, pendingLogin(t, e, ae), code); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	if _, err := ae.TOTPCode(ctx, ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("TOTPCode with a cancelled context: %v", err)
	}
}

// Confirming enrolment with the saved secret's code spends that step: the
// first login right after mfa enable waits for the next one.
func TestStoredSecretAfterEnable(t *testing.T) {
	e := newEnv(t)
	ae := e.accountEnv()
	var waits []time.Duration
	ae.Wait = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		e.clock.Add(d)
		return nil
	}
	if _, err := ae.Signup(e.ctx, SignupRequest{Server: e.http.URL, Username: "otto", Email: "otto@example.com", Password: goodPassword}); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(5 * time.Second)
	if _, err := ae.StartMFASetup(e.ctx, "", true); err != nil {
		t.Fatal(err)
	}
	code, err := ae.TOTPCode(e.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ae.EnableMFA(e.ctx, "", code); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(time.Second)
	if _, err := ae.FinishMFAWithStoredSecret(e.ctx, pendingLogin(t, e, ae)); err != nil {
		t.Fatalf("login right after enable: %v", err)
	}
	if len(waits) != 1 || waits[0] != 24*time.Second {
		t.Fatalf("waits %v, want one of 24s", waits)
	}
}
