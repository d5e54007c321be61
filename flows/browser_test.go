package flows

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/internal/fakeidp"
	"github.com/latch-dev/latch/vault"
)

func TestBrowserLogin(t *testing.T) {
	o := newOAuthEnv(t)
	b, err := o.StartBrowserLogin(o.ctx, o.req())
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	redirect, _ := url.Parse(q.Get("redirect_uri"))
	switch {
	case redirect.Hostname() != "127.0.0.1" || redirect.Path != "/callback" || b.RedirectURI != q.Get("redirect_uri"):
		t.Fatalf("redirect_uri = %q", q.Get("redirect_uri"))
	case len(q.Get("state")) < 22 || len(q.Get("nonce")) < 22:
		t.Fatalf("state %q or nonce %q too short for 128 bits", q.Get("state"), q.Get("nonce"))
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		t.Fatal("no S256 PKCE challenge")
	case q.Get("scope") != "openid offline_access profile email":
		t.Fatalf("scope = %q", q.Get("scope"))
	}
	if b.Timeout != DefaultBrowserTimeout {
		t.Fatalf("Timeout = %s", b.Timeout)
	}
	page := o.browse(b)
	res, err := o.FinishBrowserLogin(o.ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	p := <-page
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Logged in") || !strings.Contains(p.Body, "close this window") ||
		strings.Contains(p.Body, "<script") || strings.Contains(p.Body, "http") {
		t.Fatalf("page %d: %s", p.Status, p.Body)
	}
	want := vault.Profile{Name: "default", Kind: vault.KindOIDC, Issuer: o.idp.URL, ClientID: "latch-cli", Username: "ada"}
	if !reflect.DeepEqual(res.Profile, want) {
		t.Fatalf("profile = %+v, want %+v", res.Profile, want)
	}
	cfg, _ := o.Config()
	if got, err := cfg.Get("default"); err != nil || !reflect.DeepEqual(got, want) || cfg.Current != "default" {
		t.Fatalf("saved profile %+v (%v), current %q", got, err, cfg.Current)
	}
	st := o.stored("default")
	if st.Access == "" || st.Refresh == "" || st.ID == "" {
		t.Fatal("tokens not saved with the ID token")
	}
	tok, err := o.Token(o.ctx, "")
	if err != nil || tok != st.Access {
		t.Fatalf("Token = %v", err)
	}
	// The listener is closed.
	if _, err := http.Get(b.RedirectURI); err == nil {
		t.Fatal("the callback still answers after the login")
	}
	// Logging in again as the same user reuses the profile.
	o.idp.Configure(func(c *fakeidp.Config) {})
	if res := o.mustLogin(); res.Profile.Name != "default" {
		t.Fatalf("second login made profile %q", res.Profile.Name)
	}
}

// The variations providers differ in, each of which must still log in.
func TestBrowserLoginProviderVariations(t *testing.T) {
	for _, tc := range []struct {
		name string
		knob func(*fakeidp.Config)
	}{
		{"state of 8+ characters required", func(c *fakeidp.Config) { c.RequireLongState = true }},
		{"localhost redirect refused", func(c *fakeidp.Config) { c.RejectLocalhost = true }},
		{"none missing from auth methods", func(c *fakeidp.Config) { c.OmitNoneAuthMethod = true }},
		{"opaque access tokens", func(c *fakeidp.Config) { c.OpaqueAccessTokens = true }},
		{"no expires_in", func(c *fakeidp.Config) { c.OmitExpiresIn = true }},
		{"iss neither advertised nor sent", func(c *fakeidp.Config) { c.HideIssParameter, c.OmitIss = true, true }},
		{"iss sent, not advertised", func(c *fakeidp.Config) { c.HideIssParameter = true }},
		{"no userinfo", func(c *fakeidp.Config) { c.NoUserinfo = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOAuthEnv(t, tc.knob)
			res := o.mustLogin()
			if res.Profile.Username != "ada" {
				t.Fatalf("username %q", res.Profile.Username)
			}
			if s := o.idp.Stats(); s.AuthHeaderCalls != 0 {
				t.Fatalf("%d token requests sent an Authorization header", s.AuthHeaderCalls)
			}
		})
	}
}

func TestBrowserLoginUsername(t *testing.T) {
	for _, tc := range []struct {
		name string
		knob func(*fakeidp.Config)
		want string
	}{
		{"preferred_username", func(c *fakeidp.Config) {}, "ada"},
		{"email", func(c *fakeidp.Config) { c.PreferredUsername = "" }, "ada@example.com"},
		{"subject", func(c *fakeidp.Config) { c.PreferredUsername, c.Email = "", "" }, "user-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOAuthEnv(t, tc.knob)
			if got := o.mustLogin().Profile.Username; got != tc.want {
				t.Fatalf("username %q, want %q", got, tc.want)
			}
		})
	}
}

// Answers that must fail the login, with the browser told why, and nothing
// saved.
func TestBrowserLoginRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		knob   func(*fakeidp.Config)
		target error
		says   string
	}{
		{"access denied", func(c *fakeidp.Config) { c.AuthorizeError = "access_denied" }, ErrAccessDenied, "denied in the browser"},
		{"other authorize error", func(c *fakeidp.Config) { c.AuthorizeError = "temporarily_unavailable" }, nil, "temporarily_unavailable"},
		{"wrong iss", func(c *fakeidp.Config) { c.WrongIss = true }, nil, "another issuer"},
		{"wrong iss, not advertised", func(c *fakeidp.Config) { c.WrongIss, c.HideIssParameter = true, true }, nil, "another issuer"},
		{"advertised iss missing", func(c *fakeidp.Config) { c.OmitIss = true }, nil, "lacks the issuer"},
		{"wrong nonce", func(c *fakeidp.Config) { c.WrongNonce = true }, client.ErrInvalidIDToken, "nonce"},
		{"no ID token", func(c *fakeidp.Config) { c.OmitIDToken = true }, client.ErrInvalidIDToken, "no ID token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOAuthEnv(t, tc.knob)
			_, page, err := o.browserLogin(o.req())
			wantErr(t, err, tc.target, tc.says)
			if page.Status != http.StatusBadRequest || !strings.Contains(page.Body, "Login failed") {
				t.Fatalf("page %d: %s", page.Status, page.Body)
			}
			if _, err := o.Secrets.Get(o.ctx, tokensKey("default")); !errors.Is(err, vault.ErrNotFound) {
				t.Fatalf("tokens saved after a failed login (%v)", err)
			}
		})
	}
}

// callback sends one request to the login's callback, as a browser (or an
// attacker) would, without following redirects.
func callback(t *testing.T, b *BrowserLogin, query url.Values) (int, string) {
	t.Helper()
	resp, err := http.Get(b.RedirectURI + "?" + query.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, sb.String()
}

func TestBrowserLoginStateMismatch(t *testing.T) {
	o := newOAuthEnv(t)
	b, err := o.StartBrowserLogin(o.ctx, o.req())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := o.FinishBrowserLogin(o.ctx, b); done <- err }()
	st, body := callback(t, b, url.Values{"code": {"c"}, "state": {"forged"}, "iss": {o.idp.URL}})
	if st != http.StatusBadRequest || !strings.Contains(body, "state mismatch") {
		t.Fatalf("page %d: %s", st, body)
	}
	wantErr(t, <-done, nil, "state mismatch")
}

// Exactly one callback is taken; a second is refused and the first stands.
func TestBrowserLoginSecondCallback(t *testing.T) {
	o := newOAuthEnv(t)
	b, err := o.StartBrowserLogin(o.ctx, o.req())
	if err != nil {
		t.Fatal(err)
	}
	// The first answer is taken but not yet resolved: Finish is not running.
	u, _ := url.Parse(b.URL)
	first := make(chan int, 1)
	go func() {
		st, _ := callback(t, b, url.Values{"code": {"c"}, "state": {u.Query().Get("state")}, "iss": {o.idp.URL}})
		first <- st
	}()
	waitFor(t, func() bool { return b.taken.Load() })
	st, body := callback(t, b, url.Values{"code": {"other"}, "state": {u.Query().Get("state")}, "iss": {o.idp.URL}})
	if st != http.StatusConflict || !strings.Contains(body, "already") {
		t.Fatalf("second callback: %d %s", st, body)
	}
	// The first answer (a made-up code) is the one Finish uses.
	_, err = o.FinishBrowserLogin(o.ctx, b)
	wantErr(t, err, nil, "invalid_grant")
	if st := <-first; st != http.StatusBadRequest {
		t.Fatalf("first callback page %d", st)
	}
	if resp, err := http.Get(strings.Replace(b.RedirectURI, "/callback", "/other", 1)); err == nil {
		resp.Body.Close()
		t.Fatal("the listener is still open")
	}
}

func TestBrowserLoginOtherPaths(t *testing.T) {
	o := newOAuthEnv(t)
	b, err := o.StartBrowserLogin(o.ctx, o.req())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	resp, err := http.Get(strings.Replace(b.RedirectURI, "/callback", "/favicon.ico", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || b.taken.Load() {
		t.Fatalf("other path: %d, taken %v", resp.StatusCode, b.taken.Load())
	}
}

func TestBrowserLoginTimeoutAndCancel(t *testing.T) {
	o := newOAuthEnv(t)
	b, err := o.StartBrowserLogin(o.ctx, o.req())
	if err != nil {
		t.Fatal(err)
	}
	b.Timeout = 50 * time.Millisecond
	_, err = o.FinishBrowserLogin(o.ctx, b)
	wantErr(t, err, ErrBrowserTimeout, "start it again")
	if _, err := http.Get(b.RedirectURI); err == nil {
		t.Fatal("listener open after the timeout")
	}

	b, err = o.StartBrowserLogin(o.ctx, o.req())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(o.ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = o.FinishBrowserLogin(ctx, b)
	wantErr(t, err, context.Canceled, "")

	b, err = o.StartBrowserLogin(o.ctx, o.req())
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, b.Close)
	_, err = o.FinishBrowserLogin(o.ctx, b)
	wantErr(t, err, nil, "closed")
}

func TestOAuthRequestChecks(t *testing.T) {
	o := newOAuthEnv(t)
	for _, tc := range []struct {
		name string
		req  OAuthRequest
		says string
	}{
		{"nothing", OAuthRequest{}, "--server URL"},
		{"both", OAuthRequest{Server: o.idp.URL, Issuer: o.idp.URL, ClientID: "x"}, "not both"},
		{"no client id", OAuthRequest{Issuer: o.idp.URL}, "--client-id"},
		{"plain http", OAuthRequest{Issuer: "http://idp.example", ClientID: "x"}, "http://"},
		{"bad profile", OAuthRequest{Profile: "a/b", Issuer: o.idp.URL, ClientID: "x"}, "path separator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := o.StartBrowserLogin(o.ctx, tc.req)
			wantErr(t, err, nil, tc.says)
			_, err = o.StartDeviceLogin(o.ctx, tc.req)
			wantErr(t, err, nil, tc.says)
		})
	}
}

// A --server login: the issuer is the server URL, the client latch-cli, and
// the profile keeps the server.
func TestBrowserLoginServer(t *testing.T) {
	o := newOAuthEnv(t)
	res, _, err := o.browserLogin(OAuthRequest{Server: o.idp.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Profile.Server != o.idp.URL || res.Profile.Issuer != o.idp.URL || res.Profile.ClientID != DefaultClientID {
		t.Fatalf("profile %+v", res.Profile)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
