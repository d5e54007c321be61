package client_test

import (
	"errors"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/server"
)

// realServer starts a real `latch serve` (in-process, in memory, on
// loopback) with cfg and returns a client for it.
func realServer(t *testing.T, cfg server.Config) *client.Client {
	t.Helper()
	cfg.DBPath, cfg.Issuer, cfg.SecretKey = server.MemoryDB, "http://latch.test", make([]byte, 32)
	srv, err := server.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	c, err := client.New(hs.URL, client.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAgainstRealServer drives every endpoint of a real `latch serve`
// (in-process, loopback HTTP) through the client: the two sides of the wire
// contract must agree.
func TestAgainstRealServer(t *testing.T) {
	now := time.Now()
	c := realServer(t, server.Config{Now: func() time.Time { return now }})
	ctx := t.Context()
	const pw = "correct horse battery staple"

	cfg, err := c.Config(ctx)
	if err != nil || cfg.Username.MinLength != 3 || cfg.Password.MinScore != 3 || cfg.AccessTokenTTL != 15*time.Minute {
		t.Fatalf("config: %+v %v", cfg, err)
	}
	_, err = c.Register(ctx, "al", "nope", "x")
	var apiErr *client.APIError
	if !errors.Is(err, client.ErrValidation) || !errors.As(err, &apiErr) || len(apiErr.Fields) != 3 {
		t.Fatalf("invalid register: %v", err)
	}
	if _, err := c.Register(ctx, "alice", "alice@example.com", pw); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx, "ALICE", "other@example.com", pw); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := c.Login(ctx, "alice", "wrong password"); !errors.Is(err, client.ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	tok, err := c.Login(ctx, "alice@example.com", pw)
	if err != nil {
		t.Fatal(err)
	}
	me, err := c.Me(ctx, tok.AccessToken)
	if err != nil || me.Username != "alice" || me.MFAEnabled {
		t.Fatalf("me: %+v %v", me, err)
	}
	if who, err := c.Protected(ctx, tok.AccessToken); err != nil || who != "alice" {
		t.Fatalf("protected: %q %v", who, err)
	}
	sessions, err := c.Sessions(ctx, tok.AccessToken)
	if err != nil || len(sessions) != 1 || !sessions[0].Current {
		t.Fatalf("sessions: %+v %v", sessions, err)
	}

	next, err := c.Refresh(ctx, tok.RefreshToken)
	if err != nil || next.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh: %v", err)
	}
	retry, err := c.Refresh(ctx, tok.RefreshToken) // a lost answer, retried
	if err != nil || retry.RefreshToken != next.RefreshToken {
		t.Fatalf("grace retry: %v", err)
	}
	now = now.Add(time.Minute)
	if _, err := c.Refresh(ctx, tok.RefreshToken); !errors.Is(err, client.ErrReuseDetected) {
		t.Fatalf("reuse: %v", err)
	}
	if _, err := c.Refresh(ctx, next.RefreshToken); !errors.Is(err, client.ErrInvalidRefreshToken) {
		t.Fatalf("successor after reuse: %v", err)
	}
	if _, err := c.Me(ctx, next.AccessToken); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("access token of a revoked session: %v", err)
	}

	tok, err = c.Login(ctx, "alice", pw)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ChangePassword(ctx, tok.AccessToken, pw, "tangerine orbit quietly jumps"); err != nil {
		t.Fatal(err)
	}
	if err := c.RevokeSession(ctx, tok.AccessToken, "no-such-session"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("revoke unknown session: %v", err)
	}
	if err := c.Logout(ctx, tok.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if err := c.Logout(ctx, tok.RefreshToken); err != nil {
		t.Fatalf("logout is idempotent: %v", err)
	}
	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestMFAAgainstRealServer walks two-factor authentication through the
// client against a real server on a fixed clock: enrol, log in with a TOTP
// code and a backup code, the refusals callers act on, regenerate, disable.
func TestMFAAgainstRealServer(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	advance := func(d time.Duration) { clock.Add(int64(d)) }
	// This walk makes more MFA calls a minute than an account may.
	c := realServer(t, server.Config{Now: now, RateIP: -1, RateAccount: -1})
	ctx := t.Context()
	const pw = "correct horse battery staple"
	code := func(secret string) string {
		t.Helper()
		s, err := totp.GenerateCodeCustom(secret, now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// challenge logs in with the password and returns the mfa_token.
	challenge := func() string {
		t.Helper()
		_, err := c.Login(ctx, "alice", pw)
		var mfa *client.MFARequiredError
		if !errors.As(err, &mfa) || !reflect.DeepEqual(mfa.Methods, []string{"totp", "backup_code"}) {
			t.Fatalf("login: %v", err)
		}
		return mfa.Token
	}
	wantErr := func(what string, err, sentinel error, left int) {
		t.Helper()
		var apiErr *client.APIError
		if !errors.Is(err, sentinel) || !errors.As(err, &apiErr) || apiErr.AttemptsLeft != left {
			t.Fatalf("%s: %v, want %v with %d attempts left", what, err, sentinel, left)
		}
	}

	if cfg, err := c.Config(ctx); err != nil || !reflect.DeepEqual(cfg.MFAMethods, []string{"totp", "backup_code"}) {
		t.Fatalf("config: %+v %v", cfg, err)
	}
	if _, err := c.Register(ctx, "alice", "alice@example.com", pw); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Login(ctx, "alice", pw)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.MFAEnable(ctx, tok.AccessToken, "123456")
	wantErr("enable before setup", err, client.ErrMFASetupRequired, 0)
	wantErr("disable while off", c.MFADisable(ctx, tok.AccessToken, "123456"), client.ErrMFANotEnabled, 0)

	setup, err := c.MFASetup(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	key, err := otp.NewKeyFromURL(setup.URI)
	if err != nil || key.Secret() != setup.Secret || key.Issuer() != "latch (latch.test)" || key.AccountName() != "alice" ||
		key.Period() != 30 || key.Digits() != otp.DigitsSix || key.Algorithm() != otp.AlgorithmSHA1 {
		t.Fatalf("setup uri %v: %v", key, err)
	}
	wrong := "000000"
	if wrong == code(setup.Secret) {
		wrong = "000001"
	}
	_, err = c.MFAEnable(ctx, tok.AccessToken, wrong)
	wantErr("enable with a wrong code", err, client.ErrInvalidCode, 0)
	enabling := code(setup.Secret)
	backup, err := c.MFAEnable(ctx, tok.AccessToken, enabling)
	if err != nil || len(backup) != 10 {
		t.Fatalf("enable: %d codes, %v", len(backup), err)
	}
	_, err = c.MFASetup(ctx, tok.AccessToken)
	wantErr("setup while on", err, client.ErrMFAAlreadyEnabled, 0)
	if me, err := c.Me(ctx, tok.AccessToken); err != nil || !me.MFAEnabled {
		t.Fatalf("me: %+v %v", me, err)
	}

	mt := challenge()
	_, err = c.MFAVerify(ctx, mt, enabling)
	wantErr("the enabling code replayed", err, client.ErrInvalidCode, 4)
	advance(30 * time.Second)
	tok, err = c.MFAVerify(ctx, mt, code(setup.Secret))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refresh(ctx, tok.RefreshToken); err != nil {
		t.Fatalf("refresh an MFA session: %v", err)
	}
	_, err = c.MFAVerify(ctx, mt, backup[0])
	wantErr("a used mfa token", err, client.ErrMFAChallengeExpired, 0)

	if _, err = c.MFAVerify(ctx, challenge(), strings.ToUpper(backup[0])); err != nil {
		t.Fatalf("backup code: %v", err)
	}
	_, err = c.MFAVerify(ctx, challenge(), backup[0])
	wantErr("a used backup code", err, client.ErrInvalidCode, 4)

	mt = challenge()
	for left := 4; left > 0; left-- {
		_, err = c.MFAVerify(ctx, mt, "abcde-abcde")
		wantErr("a wrong code", err, client.ErrInvalidCode, left)
	}
	_, err = c.MFAVerify(ctx, mt, "abcde-abcde")
	wantErr("the last wrong code", err, client.ErrMFAChallengeExpired, 0)

	mt = challenge()
	advance(5 * time.Minute)
	_, err = c.MFAVerify(ctx, mt, code(setup.Secret))
	wantErr("an expired mfa token", err, client.ErrMFAChallengeExpired, 0)
	if tok, err = c.MFAVerify(ctx, challenge(), code(setup.Secret)); err != nil {
		t.Fatal(err)
	}

	advance(30 * time.Second)
	fresh, err := c.MFABackupCodes(ctx, tok.AccessToken, code(setup.Secret))
	if err != nil || len(fresh) != 10 {
		t.Fatalf("new backup codes: %d, %v", len(fresh), err)
	}
	_, err = c.MFAVerify(ctx, challenge(), backup[1])
	wantErr("an old backup code", err, client.ErrInvalidCode, 4)
	if err := c.MFADisable(ctx, tok.AccessToken, fresh[0]); err != nil {
		t.Fatalf("disable with a backup code: %v", err)
	}
	if me, err := c.Me(ctx, tok.AccessToken); err != nil || me.MFAEnabled {
		t.Fatalf("me after disable: %+v %v", me, err)
	}
	if _, err := c.Login(ctx, "alice", pw); err != nil {
		t.Fatalf("login after disable: %v", err)
	}
}
