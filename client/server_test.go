package client_test

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/server"
)

// TestAgainstRealServer drives every endpoint of a real `latch serve`
// (in-process, loopback HTTP) through the client: the two sides of the wire
// contract must agree.
func TestAgainstRealServer(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	srv, err := server.New(t.Context(), server.Config{
		DBPath: server.MemoryDB, Issuer: "http://latch.test", SecretKey: make([]byte, 32), Now: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	c, err := client.New(hs.URL, client.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
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
