package flows

import (
	"errors"
	"testing"

	"github.com/latch-dev/latch/client"
)

// Logging in again over a logged-in profile ends the session it replaces at
// the server, once the new one is saved; a server that cannot end it costs
// a warning, never the new session.
func TestLoginAgainEndsThePreviousSession(t *testing.T) {
	e := newEnv(t)
	ae := e.accountEnv()
	var warnings []string
	ae.Warn = func(msg string) { warnings = append(warnings, msg) }
	if _, err := ae.Signup(e.ctx, SignupRequest{Server: e.http.URL, Username: "rita", Email: "rita@example.com", Password: goodPassword}); err != nil {
		t.Fatal(err)
	}
	oldRT, _ := ae.Tokens().RefreshToken(e.ctx, "default")
	oldAT, _ := ae.Token(e.ctx, "")

	if _, err := ae.Login(e.ctx, LoginRequest{Server: e.http.URL, Identifier: "rita", Password: goodPassword}); err != nil {
		t.Fatal(err)
	}
	newRT, _ := ae.Tokens().RefreshToken(e.ctx, "default")
	if newRT == oldRT || newRT == "" {
		t.Fatal("the login did not save a new session")
	}
	if _, err := e.client.Refresh(e.ctx, oldRT); err == nil {
		t.Fatal("the replaced session can still refresh")
	}
	if _, err := e.client.Me(e.ctx, oldAT); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("the replaced session's access token still works: %v", err)
	}
	tok, err := ae.Token(e.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	e.checkUsable(tok, "rita")
	if len(warnings) != 0 {
		t.Fatalf("warnings: %q", warnings)
	}

	// A server that fails to end the old session: the new one stands.
	ae2 := e.accountEnv()
	ae2.Warn = ae.Warn
	calls := 0
	ae2.Client = func(server string) (*client.Client, error) {
		calls++
		if calls == 2 { // the first is the login's own client
			return nil, errors.New("the server is unreachable")
		}
		return e.client, nil
	}
	if _, err := ae2.Login(e.ctx, LoginRequest{Server: e.http.URL, Identifier: "rita", Password: goodPassword}); err != nil {
		t.Fatalf("login failed because the old session could not be ended: %v", err)
	}
	if len(warnings) != 1 {
		t.Fatalf("warnings = %q, want one about the session left open", warnings)
	}
	tok, err = ae2.Token(e.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	e.checkUsable(tok, "rita")
}

// The same for an OpenID profile: the replaced refresh token is revoked at
// the provider, the new one kept.
func TestOAuthLoginAgainRevokesThePreviousSession(t *testing.T) {
	o := newOAuthEnv(t)
	first := o.mustLogin()
	oldRT := o.stored(first.Profile.Name).Refresh
	again := o.mustLogin()
	if again.Profile.Name != first.Profile.Name {
		t.Fatalf("logged in again into %q, not %q", again.Profile.Name, first.Profile.Name)
	}
	newRT := o.stored(again.Profile.Name).Refresh
	if got := o.idp.Stats().Revocations; len(got) != 1 || got[0] != oldRT {
		t.Fatalf("revocations %d, want the replaced refresh token", len(got))
	}
	if o.idp.RefreshTokenValid(oldRT) || !o.idp.RefreshTokenValid(newRT) {
		t.Fatal("the old session lives on, or the new one was ended")
	}
}
