package flows

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/vault"
)

const goodPassword = "correct horse battery staple"

// accountEnv is an Env over the test server and the env's file vault.
func (e *env) accountEnv() *Env {
	return &Env{
		Home: e.dir, Secrets: e.secrets, Vault: vault.Choice{Backend: vault.ModeFile, Reason: "test"}, Now: e.clock.Now,
		Client: func(string) (*client.Client, error) { return e.client, nil },
	}
}

func TestSignupLoginLogout(t *testing.T) {
	e := newEnv(t)
	ae := e.accountEnv()

	res, err := ae.Signup(e.ctx, SignupRequest{Server: e.http.URL, Username: "alice", Email: "alice@example.com", Password: goodPassword})
	if err != nil {
		t.Fatal(err)
	}
	if res.Profile.Name != "default" || res.Profile.Username != "alice" || res.Profile.Kind != vault.KindAccount {
		t.Fatalf("profile = %+v", res.Profile)
	}
	cfg, err := ae.Config()
	if err != nil || cfg.Current != "default" || len(cfg.Profiles) != 1 {
		t.Fatalf("config = %+v, %v", cfg, err)
	}
	st, err := ae.ProfileStatus(e.ctx, "")
	if err != nil || st.State != StateLoggedIn || !st.Current {
		t.Fatalf("status = %+v, %v", st, err)
	}
	tok, err := ae.Token(e.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	e.checkUsable(tok, "alice")
	me, err := ae.Me(e.ctx, "")
	if err != nil || me.Username != "alice" {
		t.Fatalf("me = %+v, %v", me, err)
	}

	// A login by email to the same server reuses the profile.
	res, err = ae.Login(e.ctx, LoginRequest{Profile: "default", Server: e.http.URL, Identifier: "alice@example.com", Password: goodPassword})
	if err != nil || res.Profile.Name != "default" || res.Profile.Username != "alice" {
		t.Fatalf("login by email = %+v, %v", res, err)
	}

	tok, err = ae.Token(e.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	out, err := ae.Logout(e.ctx, "", false, false)
	if err != nil || out.Revoked != 1 {
		t.Fatalf("logout = %+v, %v", out, err)
	}
	if _, err := e.client.Me(e.ctx, tok); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("the access token still works after logout: %v", err)
	}
	if _, err := ae.Token(e.ctx, ""); !errors.Is(err, ErrLoginRequired) {
		t.Fatalf("token after logout: %v, want ErrLoginRequired", err)
	}
	st, _ = ae.ProfileStatus(e.ctx, "")
	if st.State != StateLoggedOut {
		t.Fatalf("state after logout = %s", st.State)
	}
	// The profile stays, so the next login needs no server.
	if _, err := ae.Profile(""); err != nil {
		t.Fatalf("profile gone after logout: %v", err)
	}
}

func TestLoginWrongPasswordSavesNothing(t *testing.T) {
	e := newEnv(t)
	ae := e.accountEnv()
	if _, err := e.client.Register(e.ctx, "bob", "bob@example.com", goodPassword); err != nil {
		t.Fatal(err)
	}
	_, err := ae.Login(e.ctx, LoginRequest{Server: e.http.URL, Identifier: "bob", Password: "wrong password!"})
	if !errors.Is(err, client.ErrInvalidCredentials) {
		t.Fatalf("err = %v", err)
	}
	cfg, _ := ae.Config()
	if len(cfg.Profiles) != 0 {
		t.Fatalf("a failed login recorded a profile: %+v", cfg.Profiles)
	}
}

func TestSignupFieldErrors(t *testing.T) {
	e := newEnv(t)
	ae := e.accountEnv()
	_, err := ae.Signup(e.ctx, SignupRequest{Server: e.http.URL, Username: "carol", Email: "not-an-email", Password: "password"})
	var ae2 *client.APIError
	if !errors.As(err, &ae2) || ae2.Fields["email"] == "" || ae2.Fields["password"] == "" {
		t.Fatalf("err = %#v, want field errors for email and password", err)
	}
}

// A revoked session: the access token is refused, the refresh is refused,
// and the user is told to log in again — with the tokens kept.
func TestAuthedRevokedSession(t *testing.T) {
	e := newEnv(t)
	ae := e.accountEnv()
	if _, err := ae.Signup(e.ctx, SignupRequest{Server: e.http.URL, Username: "dave", Email: "dave@example.com", Password: goodPassword}); err != nil {
		t.Fatal(err)
	}
	before := e.raw("default")
	tok, _ := ae.Token(e.ctx, "")
	rt, _ := ae.Tokens().RefreshToken(e.ctx, "default")
	if err := e.client.Logout(e.ctx, rt); err != nil {
		t.Fatal(err)
	}
	_, err := ae.Me(e.ctx, "")
	if !errors.Is(err, ErrLoginRequired) {
		t.Fatalf("err = %v, want ErrLoginRequired", err)
	}
	noSecrets(t, err, tok, rt)
	if got := e.raw("default"); string(got) != string(before) {
		t.Fatal("the saved tokens changed after a refused refresh")
	}
}

// A rejected access token with a live session (the server restarted with a
// new signing key, say) is recovered by one forced rotation.
func TestAuthedRotatesOnUnauthorized(t *testing.T) {
	e := newEnv(t)
	ae := e.accountEnv()
	if _, err := ae.Signup(e.ctx, SignupRequest{Server: e.http.URL, Username: "erin", Email: "erin@example.com", Password: goodPassword}); err != nil {
		t.Fatal(err)
	}
	st := e.stored("default")
	st.Access = "not.a.jwt"
	if err := ae.Tokens().store(e.ctx, "default", &st); err != nil {
		t.Fatal(err)
	}
	me, err := ae.Me(e.ctx, "")
	if err != nil || me.Username != "erin" {
		t.Fatalf("me = %+v, %v", me, err)
	}
	if got := e.stored("default"); got.Rotations != 1 || got.Access == "not.a.jwt" {
		t.Fatalf("after recovery: rotations %d", got.Rotations)
	}
}

func TestAPI(t *testing.T) {
	e := newEnv(t)
	ae := e.accountEnv()
	if _, err := ae.Signup(e.ctx, SignupRequest{Server: e.http.URL, Username: "frank", Email: "frank@example.com", Password: goodPassword}); err != nil {
		t.Fatal(err)
	}
	res, err := ae.API(e.ctx, "", http.MethodGet, "/auth/me", nil)
	if err != nil || res.Status != 200 || !strings.Contains(string(res.Body), `"frank"`) {
		t.Fatalf("api = %+v, %v", res, err)
	}
	res, err = ae.API(e.ctx, "", http.MethodGet, "/auth/sessions/nope", nil)
	if err != nil || res.Status < 400 {
		t.Fatalf("a 4xx must be a response, not an error: %+v, %v", res, err)
	}
}

func TestLogoutEverywhere(t *testing.T) {
	e := newEnv(t)
	ae := e.accountEnv()
	if _, err := ae.Signup(e.ctx, SignupRequest{Server: e.http.URL, Username: "gina", Email: "gina@example.com", Password: goodPassword}); err != nil {
		t.Fatal(err)
	}
	other, err := e.client.Login(e.ctx, "gina", goodPassword) // another device
	if err != nil {
		t.Fatal(err)
	}
	res, err := ae.Logout(e.ctx, "", true, false)
	if err != nil || res.Revoked != 2 {
		t.Fatalf("logout --all = %+v, %v", res, err)
	}
	if _, err := e.client.Refresh(e.ctx, other.RefreshToken); err == nil {
		t.Fatal("the other device's session survived logout --all")
	}
}

// Logging out while the server is down keeps the session; --local forgets it.
func TestLogoutServerDown(t *testing.T) {
	e := newEnv(t)
	ae := e.accountEnv()
	if _, err := ae.Signup(e.ctx, SignupRequest{Server: e.http.URL, Username: "hank", Email: "hank@example.com", Password: goodPassword}); err != nil {
		t.Fatal(err)
	}
	e.http.Close()
	if _, err := ae.Logout(e.ctx, "", false, false); !errors.Is(err, client.ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if st, _ := ae.ProfileStatus(e.ctx, ""); st.State != StateLoggedIn {
		t.Fatalf("state = %s: the session was dropped although the server never heard of the logout", st.State)
	}
	if _, err := ae.Logout(e.ctx, "", false, true); err != nil {
		t.Fatal(err)
	}
	if st, _ := ae.ProfileStatus(e.ctx, ""); st.State != StateLoggedOut {
		t.Fatalf("state after --local = %s", st.State)
	}
}

func TestRemoveProfile(t *testing.T) {
	e := newEnv(t)
	ae := e.accountEnv()
	if _, err := ae.Signup(e.ctx, SignupRequest{Server: e.http.URL, Username: "ivy", Email: "ivy@example.com", Password: goodPassword}); err != nil {
		t.Fatal(err)
	}
	if err := ae.RemoveProfile(e.ctx, "default", false); err == nil || !strings.Contains(err.Error(), "logged in") {
		t.Fatalf("removing a logged-in profile: %v", err)
	}
	if err := ae.RemoveProfile(e.ctx, "default", true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.secrets.Get(e.ctx, tokensKey("default")); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("tokens left behind: %v", err)
	}
	cfg, _ := ae.Config()
	if len(cfg.Profiles) != 0 || cfg.Current != "" {
		t.Fatalf("config = %+v", cfg)
	}
}

func TestPickProfile(t *testing.T) {
	a := vault.Profile{Name: "a", Kind: vault.KindAccount}
	b := vault.Profile{Name: "b", Kind: vault.KindAccount}
	tests := []struct {
		name    string
		cfg     vault.Config
		arg     string
		want    string
		wantErr error
	}{
		{"named", vault.Config{Profiles: []vault.Profile{a, b}}, "b", "b", nil},
		{"current", vault.Config{Current: "a", Profiles: []vault.Profile{a, b}}, "", "a", nil},
		{"only one", vault.Config{Profiles: []vault.Profile{b}}, "", "b", nil},
		{"none", vault.Config{}, "", "", ErrNoProfile},
		{"ambiguous", vault.Config{Profiles: []vault.Profile{a, b}}, "", "", ErrNoProfile},
		{"unknown name", vault.Config{Profiles: []vault.Profile{a}}, "zed", "", ErrLoginRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := pickProfile(&tt.cfg, tt.arg)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !errors.Is(err, ErrLoginRequired) {
					t.Fatalf("err = %v, want %v (and ErrLoginRequired)", err, tt.wantErr)
				}
				return
			}
			if err != nil || p.Name != tt.want {
				t.Fatalf("got %q, %v; want %q", p.Name, err, tt.want)
			}
		})
	}
}

func TestProfileName(t *testing.T) {
	cfg := &vault.Config{}
	if got := ProfileName(cfg, "http://127.0.0.1:8080", "alice"); got != "default" {
		t.Fatalf("first profile = %q", got)
	}
	cfg.Profiles = []vault.Profile{{Name: "default", Kind: vault.KindAccount, Server: "http://127.0.0.1:8080", Username: "alice"}}
	if got := ProfileName(cfg, "http://127.0.0.1:8080/", "ALICE"); got != "default" {
		t.Fatalf("same server and user = %q", got)
	}
	if got := ProfileName(cfg, "http://127.0.0.1:8080", "bob"); got != "bob@127.0.0.1-8080" {
		t.Fatalf("second user = %q", got)
	}
	if got := ProfileName(cfg, "http://[::1]:9000", "bob"); got != "bob@--1-9000" {
		t.Fatalf("ipv6 = %q", got)
	}
}

// OpenEnv remembers the auto choice in the profiles file and reopens it
// without probing; an explicit mode does not overwrite it.
func TestOpenEnvRemembersChoice(t *testing.T) {
	dir := t.TempDir()
	cfg := &vault.Config{Vault: &vault.Choice{Backend: vault.ModeFile, Reason: "keyring unavailable: test"}}
	if err := cfg.Save(dir); err != nil {
		t.Fatal(err)
	}
	ae, err := OpenEnv(t.Context(), dir, VaultOptions{Mode: vault.ModeAuto, Passphrase: fixedPass})
	if err != nil {
		t.Fatal(err)
	}
	if ae.Vault.Backend != vault.ModeFile || !strings.Contains(ae.Vault.Reason, "keyring unavailable: test") {
		t.Fatalf("choice = %+v", ae.Vault)
	}
	if err := ae.Secrets.Set(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "secrets.age")); err != nil {
		t.Fatalf("the remembered file vault was not used: %v", err)
	}
	mem, err := OpenEnv(t.Context(), dir, VaultOptions{Mode: vault.ModeMemory})
	if err != nil || mem.Vault.Backend != vault.ModeMemory {
		t.Fatalf("explicit memory = %+v, %v", mem, err)
	}
	again, _ := vault.LoadConfig(dir)
	if again.Vault == nil || again.Vault.Backend != vault.ModeFile {
		t.Fatalf("an explicit mode overwrote the remembered choice: %+v", again.Vault)
	}
}

func TestDecodeJWT(t *testing.T) {
	e := newEnv(t)
	tok := e.login("jane")
	v, err := DecodeJWT(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if v.Header["alg"] != "ES256" || v.Claims["sid"] == nil || v.Signature == "" {
		t.Fatalf("view = %+v", v)
	}
	for _, bad := range []string{"", "a.b", "a.b.c", "e30.!!!.c"} {
		if _, err := DecodeJWT(bad); err == nil {
			t.Errorf("DecodeJWT(%q) succeeded", bad)
		}
	}
}

func TestLoginDefaults(t *testing.T) {
	dir := t.TempDir()
	cfg := &vault.Config{Current: "work", Profiles: []vault.Profile{
		{Name: "work", Kind: vault.KindAccount, Server: "https://a.example", Username: "alice"},
		{Name: "home", Kind: vault.KindAccount, Server: "https://b.example", Username: "bob"},
	}}
	if err := cfg.Save(dir); err != nil {
		t.Fatal(err)
	}
	e := &Env{Home: dir}
	tests := []struct {
		name    string
		in, out LoginRequest
	}{
		{"current profile", LoginRequest{}, LoginRequest{Profile: "work", Server: "https://a.example", Identifier: "alice"}},
		{"named profile", LoginRequest{Profile: "home"}, LoginRequest{Profile: "home", Server: "https://b.example", Identifier: "bob"}},
		{"named, other server", LoginRequest{Profile: "home", Server: "https://c.example"}, LoginRequest{Profile: "home", Server: "https://c.example"}},
		{"new server", LoginRequest{Server: "https://c.example"}, LoginRequest{Server: "https://c.example"}},
		{"all given", LoginRequest{Server: "https://a.example", Identifier: "carol"}, LoginRequest{Server: "https://a.example", Identifier: "carol"}},
		{"unknown profile", LoginRequest{Profile: "nope"}, LoginRequest{Profile: "nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := e.LoginDefaults(tt.in); got != tt.out {
				t.Fatalf("got %+v, want %+v", got, tt.out)
			}
		})
	}
}

// A keyring that only timed out on the first run is probed again while the
// file vault it fell back to holds nothing; once it holds secrets, the
// choice stays, so secrets are always looked for where they are.
func TestOpenEnvRetriesTimedOutKeyring(t *testing.T) {
	dir := t.TempDir()
	timedOut := &vault.Config{Vault: &vault.Choice{Backend: vault.ModeFile, Reason: "keyring unavailable: it did not answer", Retry: true}}
	if err := timedOut.Save(dir); err != nil {
		t.Fatal(err)
	}
	e, err := OpenEnv(t.Context(), dir, VaultOptions{Mode: vault.ModeAuto, Passphrase: fixedPass})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(e.Vault.Reason, "remembered") || strings.Contains(e.Vault.Reason, "did not answer") {
		t.Fatalf("the timed-out keyring was not probed again: %+v", e.Vault)
	}

	if err := timedOut.Save(dir); err != nil {
		t.Fatal(err)
	}
	f, err := OpenEnv(t.Context(), dir, VaultOptions{Mode: vault.ModeFile, Passphrase: fixedPass})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Secrets.Set(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	again, err := OpenEnv(t.Context(), dir, VaultOptions{Mode: vault.ModeAuto, Passphrase: fixedPass})
	if err != nil {
		t.Fatal(err)
	}
	if again.Vault.Backend != vault.ModeFile || !strings.Contains(again.Vault.Reason, "remembered") {
		t.Fatalf("a file vault holding secrets was left for a new probe: %+v", again.Vault)
	}
}
