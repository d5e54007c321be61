package flows

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/internal/fakeidp"
	"github.com/latch-dev/latch/vault"
)

// Refresh through the token manager copes with each way providers rotate.
func TestOAuthRefreshVariations(t *testing.T) {
	for _, tc := range []struct {
		name        string
		knob        func(*fakeidp.Config)
		sameRefresh bool
		accessLife  time.Duration // of the refreshed access token, as saved
	}{
		{"rotates", func(c *fakeidp.Config) {}, false, 5 * time.Minute},
		{"returns the same refresh token", func(c *fakeidp.Config) { c.SameRefreshToken = true }, true, 5 * time.Minute},
		{"never rotates (no refresh_token field)", func(c *fakeidp.Config) { c.NeverRotate = true }, true, 5 * time.Minute},
		{"reuse window", func(c *fakeidp.Config) { c.ReuseWindow = time.Minute }, false, 5 * time.Minute},
		{"no expires_in, JWT access token", func(c *fakeidp.Config) { c.OmitExpiresIn, c.AccessTTL = true, 20*time.Minute }, false, 20 * time.Minute},
		{"no expires_in, opaque access token", func(c *fakeidp.Config) {
			c.OmitExpiresIn, c.OpaqueAccessTokens, c.AccessTTL = true, true, 20*time.Minute
		}, false, client.DefaultAccessTTL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOAuthEnv(t, tc.knob)
			o.mustLogin()
			before := o.stored("default")
			o.clock.Add(tc.accessLife)
			tok, err := o.Token(o.ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			after := o.stored("default")
			switch {
			case tok == before.Access || tok != after.Access:
				t.Fatal("the new access token was not returned and saved")
			case (after.Refresh == before.Refresh) != tc.sameRefresh:
				t.Fatalf("refresh token kept = %v, want %v", after.Refresh == before.Refresh, tc.sameRefresh)
			case after.ID == "" || after.ID == before.ID || after.Rotations != 1:
				t.Fatalf("new ID token not saved (%v) or rotations %d", after.ID != before.ID, after.Rotations)
			}
			if life := time.Duration(after.AccessExp-after.Issued) * time.Second; life < tc.accessLife-2*time.Second || life > tc.accessLife+2*time.Second {
				t.Fatalf("saved access lifetime %s, want about %s", life, tc.accessLife)
			}
			// And again, with what was saved.
			o.clock.Add(tc.accessLife)
			if _, err := o.Token(o.ctx, ""); err != nil {
				t.Fatal(err)
			}
			if s := o.idp.Stats(); s.Refreshes != 2 || s.Replays != 0 {
				t.Fatalf("refreshes %d, replays %d", s.Refreshes, s.Replays)
			}
		})
	}
}

// A refresh answer without an ID token keeps the login's.
func TestOAuthRefreshKeepsIDToken(t *testing.T) {
	o := newOAuthEnv(t, func(c *fakeidp.Config) { c.NoIDTokenOnRefresh = true })
	o.mustLogin()
	before := o.stored("default")
	o.expire()
	if _, err := o.Token(o.ctx, ""); err != nil {
		t.Fatal(err)
	}
	if after := o.stored("default"); after.ID != before.ID || after.Access == before.Access {
		t.Fatal("the ID token was not kept")
	}
}

// A refused refresh token means logging in again; the saved tokens stay.
func TestOAuthRefreshRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		knob func(*fakeidp.Config)
	}{
		{"invalid_grant on replay", func(c *fakeidp.Config) {}},
		{"invalid_request on replay", func(c *fakeidp.Config) { c.ReplayError = "invalid_request" }},
		{"family revoked on replay", func(c *fakeidp.Config) { c.RevokeFamilyOnReplay = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOAuthEnv(t, tc.knob)
			o.mustLogin()
			old, err := o.Secrets.Get(o.ctx, tokensKey("default"))
			if err != nil {
				t.Fatal(err)
			}
			o.expire()
			if _, err := o.Token(o.ctx, ""); err != nil {
				t.Fatal(err)
			}
			// An old copy of the session comes back (a restored backup, a
			// latch that lost its save): its refresh token is spent.
			if err := o.Secrets.Set(o.ctx, tokensKey("default"), old); err != nil {
				t.Fatal(err)
			}
			o.expire()
			_, err = o.Token(o.ctx, "")
			wantErr(t, err, ErrLoginRequired, "log in again")
			if !errors.Is(err, client.ErrInvalidRefreshToken) {
				t.Fatalf("%v does not match client.ErrInvalidRefreshToken", err)
			}
			noSecrets(t, err, o.secretsOf("default")...)
			if now, _ := o.Secrets.Get(o.ctx, tokensKey("default")); !bytes.Equal(now, old) {
				t.Fatal("the saved tokens changed after a refusal")
			}
			// Status tells the refusal (issue 13), the tokens still saved.
			st, err := o.ProfileStatus(o.ctx, "")
			if err != nil || st.State != StateRefused {
				t.Fatalf("status %+v, %v", st, err)
			}
		})
	}
}

// The family-revoking provider never sees a replay from latch itself: the
// lock makes concurrent callers share one refresh.
func TestOAuthRefreshConcurrent(t *testing.T) {
	o := newOAuthEnv(t, func(c *fakeidp.Config) { c.RevokeFamilyOnReplay = true })
	o.mustLogin()
	o.expire()
	const n = 10
	var (
		wg     sync.WaitGroup
		tokens [n]string
		errs   [n]error
	)
	for i := range n {
		e := *o.Env // each its own Env and TokenManager over the shared vault and lock dir
		wg.Go(func() { tokens[i], errs[i] = e.Token(o.ctx, "") })
	}
	wg.Wait()
	want := o.stored("default").Access
	for i := range n {
		if errs[i] != nil || tokens[i] != want {
			t.Fatalf("caller %d: %v (same token: %v)", i, errs[i], tokens[i] == want)
		}
	}
	if s := o.idp.Stats(); s.Refreshes != 1 || s.Replays != 0 {
		t.Fatalf("provider saw %d refreshes and %d replays, want 1 and 0", s.Refreshes, s.Replays)
	}
}

func TestOAuthRefreshProviderDown(t *testing.T) {
	o := newOAuthEnv(t)
	o.mustLogin()
	before := o.stored("default")
	o.idp.Server.Close()
	o.expire()
	_, err := o.Token(o.ctx, "")
	wantErr(t, err, client.ErrUnreachable, "unchanged")
	if errors.Is(err, ErrLoginRequired) {
		t.Fatal("an unreachable provider asks for a new login")
	}
	noSecrets(t, err, o.secretsOf("default")...)
	if o.stored("default") != before {
		t.Fatal("saved tokens changed")
	}
}

func TestOAuthNoRefreshToken(t *testing.T) {
	o := newOAuthEnv(t, func(c *fakeidp.Config) { c.NoRefreshToken = true })
	o.mustLogin()
	if _, err := o.Token(o.ctx, ""); err != nil {
		t.Fatal(err)
	}
	o.expire()
	_, err := o.Token(o.ctx, "")
	wantErr(t, err, ErrLoginRequired, "no refresh token")
	res, err := o.Logout(o.ctx, "", false, false)
	if err != nil || res.ProviderNotTold == "" {
		t.Fatalf("logout %+v, %v", res, err)
	}
}

func TestOAuthLogout(t *testing.T) {
	o := newOAuthEnv(t)
	o.mustLogin()
	rt := o.stored("default").Refresh

	_, err := o.Logout(o.ctx, "", true, false)
	wantErr(t, err, nil, "latch accounts only")

	res, err := o.Logout(o.ctx, "", false, false)
	if err != nil || res.Revoked != 1 || res.ProviderNotTold != "" {
		t.Fatalf("logout %+v, %v", res, err)
	}
	if s := o.idp.Stats(); len(s.Revocations) != 1 || s.Revocations[0] != rt || o.idp.RefreshTokenValid(rt) {
		t.Fatal("the refresh token was not revoked at the provider")
	}
	if _, err := o.Secrets.Get(o.ctx, tokensKey("default")); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("tokens kept after logout (%v)", err)
	}
	if _, err := o.Profile("default"); err != nil {
		t.Fatalf("the profile went with the tokens: %v", err)
	}
}

func TestOAuthLogoutWithoutRevocation(t *testing.T) {
	o := newOAuthEnv(t, func(c *fakeidp.Config) { c.NoRevocation = true })
	o.mustLogin()
	res, err := o.Logout(o.ctx, "", false, false)
	if err != nil || res.Revoked != 0 || res.ProviderNotTold == "" {
		t.Fatalf("logout %+v, %v", res, err)
	}
	if _, err := o.Secrets.Get(o.ctx, tokensKey("default")); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("tokens kept after logout (%v)", err)
	}
}

func TestOAuthLogoutProviderDown(t *testing.T) {
	o := newOAuthEnv(t)
	o.mustLogin()
	secrets := o.secretsOf("default")
	o.idp.Server.Close()
	_, err := o.Logout(o.ctx, "", false, false)
	wantErr(t, err, client.ErrUnreachable, "--local")
	noSecrets(t, err, secrets...)
	if _, err := o.Secrets.Get(o.ctx, tokensKey("default")); err != nil {
		t.Fatalf("tokens gone although the provider was not told: %v", err)
	}
	if _, err := o.Logout(o.ctx, "", false, true); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Secrets.Get(o.ctx, tokensKey("default")); !errors.Is(err, vault.ErrNotFound) {
		t.Fatal("--local kept the tokens")
	}
}

func TestOAuthInspectMeStatus(t *testing.T) {
	for _, opaque := range []bool{false, true} {
		o := newOAuthEnv(t, func(c *fakeidp.Config) { c.OpaqueAccessTokens = opaque })
		o.mustLogin()
		v, err := o.Inspect(o.ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if v.Opaque != opaque || (!opaque && v.Claims["sub"] != "user-1") {
			t.Fatalf("opaque %v: view %+v", opaque, v)
		}
		if v.ID == nil || v.ID.Claims["preferred_username"] != "ada" || v.ID.Claims["iss"] != o.idp.URL {
			t.Fatalf("ID token view %+v", v.ID)
		}
		me, err := o.Me(o.ctx, "")
		if err != nil || me.Username != "ada" || me.Email != "ada@example.com" {
			t.Fatalf("me %+v, %v", me, err)
		}
		st, err := o.Status(o.ctx)
		if err != nil || len(st) != 1 || st[0].State != StateLoggedIn || !st[0].Current || st[0].Tokens == nil {
			t.Fatalf("status %+v, %v", st, err)
		}
		_, err = o.Sessions(o.ctx, "")
		wantErr(t, err, nil, "not to a latch server")
	}
}

// Me retries a refused access token once with fresh tokens.
func TestOAuthMeRotatesOnRefusal(t *testing.T) {
	o := newOAuthEnv(t, func(c *fakeidp.Config) { c.OpaqueAccessTokens = true })
	o.mustLogin()
	if err := o.Secrets.Set(o.ctx, tokensKey("default"), func() []byte {
		st := o.stored("default")
		st.Access = "revoked-at-the-provider"
		b, _ := json.Marshal(st)
		return b
	}()); err != nil {
		t.Fatal(err)
	}
	me, err := o.Me(o.ctx, "")
	if err != nil || me.Username != "ada" {
		t.Fatalf("me %+v, %v", me, err)
	}
	if s := o.idp.Stats(); s.Refreshes != 1 {
		t.Fatalf("%d refreshes, want 1", s.Refreshes)
	}
}

// An OpenID login does not take over a logged-in account profile.
func TestOAuthProfileNames(t *testing.T) {
	o := newOAuthEnv(t)
	if err := o.Tokens().Save(o.ctx, "work", &client.Tokens{AccessToken: "a", RefreshToken: "r", ExpiresIn: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := vault.UpdateConfig(o.ctx, o.Home, func(c *vault.Config) error {
		return c.Put(vault.Profile{Name: "work", Kind: vault.KindAccount, Server: "https://latch.example", Username: "ada"})
	}); err != nil {
		t.Fatal(err)
	}
	req := o.req()
	req.Profile = "work"
	_, _, err := o.browserLogin(req)
	wantErr(t, err, nil, "logout")

	res := o.mustLogin()
	if res.Profile.Name == "work" || res.Profile.Name == "default" {
		t.Fatalf("name %q", res.Profile.Name)
	}
	if again := o.mustLogin(); again.Profile.Name != res.Profile.Name {
		t.Fatalf("the same user got a second profile %q", again.Profile.Name)
	}
}

func TestOAuthDefaults(t *testing.T) {
	o := newOAuthEnv(t)
	if got := o.OAuthDefaults(OAuthRequest{}); got.Issuer != "" || got.Server != "" {
		t.Fatalf("no profile: %+v", got)
	}
	o.mustLogin()
	got := o.OAuthDefaults(OAuthRequest{})
	if got.Profile != "default" || got.Issuer != o.idp.URL || got.ClientID != "latch-cli" {
		t.Fatalf("defaults %+v", got)
	}
	if got := o.OAuthDefaults(OAuthRequest{Server: "https://latch.example"}); got.Issuer != "" || got.Profile != "" {
		t.Fatalf("explicit server changed: %+v", got)
	}
	// Logging in again with the defaults keeps the profile.
	res, _, err := o.browserLogin(got)
	if err != nil || res.Profile.Name != "default" {
		t.Fatalf("login again: %+v, %v", res, err)
	}
}

// An unusually large ID token stays out of the vault entry.
func TestLargeIDTokenNotSaved(t *testing.T) {
	ctx := t.Context()
	m := &TokenManager{Secrets: vault.NewMemory(), Dir: t.TempDir()}
	big := strings.Repeat("a", maxIDToken+1)
	if err := m.Save(ctx, "p", &client.Tokens{AccessToken: "a", RefreshToken: "r", ExpiresIn: time.Hour, IDToken: big}); err != nil {
		t.Fatal(err)
	}
	if id, err := m.IDToken(ctx, "p"); err != nil || id != "" {
		t.Fatalf("ID token saved (%d bytes), %v", len(id), err)
	}
}
