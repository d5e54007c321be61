package flows

import (
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/internal/fakeidp"
	"github.com/latch-dev/latch/vault"
)

const testSecret = "s3cret-of-the-client"

// A confidential client logs in, refreshes and logs out with its secret
// sent the way the provider wants, every time: the refresh and the
// revocation rebuild the client from the profile and the vault.
func TestAnyProviderClientSecret(t *testing.T) {
	for _, tc := range []struct {
		name       string
		advertised []string
		asked      string // --auth-method
		want       string // how the fake saw the client authenticate
	}{
		{"basic, advertised first", []string{"client_secret_basic", "client_secret_post"}, "", "basic"},
		{"post, the only one advertised", []string{"client_secret_post"}, "", "post"},
		{"post, asked for", []string{"client_secret_basic", "client_secret_post"}, client.AuthMethodPost, "post"},
		{"basic, nothing advertised", []string{}, "", "basic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOAuthEnv(t, func(c *fakeidp.Config) {
				c.ClientSecret, c.ClientAuth, c.AuthMethods = testSecret, tc.want, tc.advertised
			})
			req := o.req()
			req.ClientSecret, req.AuthMethod = testSecret, tc.asked
			res, page, err := o.browserLogin(req)
			if err != nil {
				t.Fatalf("login: %v (page %s)", err, page.Body)
			}
			if s := o.idp.Stats(); s.LastClientAuth != tc.want || s.CodeExchanges != 1 {
				t.Fatalf("code exchange authenticated by %q, want %q", s.LastClientAuth, tc.want)
			}
			p := res.Profile
			if !p.Confidential || p.AuthMethod != "client_secret_"+tc.want {
				t.Fatalf("profile remembers %+v", p)
			}
			raw, err := os.ReadFile(filepath.Join(o.Home, "config.json"))
			if err != nil || strings.Contains(string(raw), testSecret) {
				t.Fatalf("the profiles file holds the secret (%v)", err)
			}
			if got, err := o.Secrets.Get(o.ctx, vault.ClientSecretKey(p.Name)); err != nil || string(got) != testSecret {
				t.Fatalf("vault secret %q, %v", got, err)
			}
			o.expire()
			if _, err := o.Token(o.ctx, ""); err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if s := o.idp.Stats(); s.Refreshes != 1 || s.LastClientAuth != tc.want {
				t.Fatalf("refresh authenticated by %q (%d refreshes)", s.LastClientAuth, s.Refreshes)
			}
			lr, err := o.Logout(o.ctx, "", false, false)
			if err != nil || lr.Revoked != 1 {
				t.Fatalf("logout: %+v %v", lr, err)
			}
			if s := o.idp.Stats(); s.LastClientAuth != tc.want || len(s.Revocations) != 1 {
				t.Fatalf("revocation authenticated by %q", s.LastClientAuth)
			}
			if err := o.RemoveProfile(o.ctx, p.Name, false); err != nil {
				t.Fatal(err)
			}
			if _, err := o.Secrets.Get(o.ctx, vault.ClientSecretKey(p.Name)); !errors.Is(err, vault.ErrNotFound) {
				t.Fatalf("the client secret outlived its profile: %v", err)
			}
		})
	}
}

// A wrong or missing secret is refused by the provider, and no error shows
// the secret.
func TestAnyProviderClientSecretRefused(t *testing.T) {
	o := newOAuthEnv(t, func(c *fakeidp.Config) { c.ClientSecret, c.AuthMethods = testSecret, []string{"client_secret_basic"} })
	req := o.req()
	req.ClientSecret = "not-" + testSecret
	_, _, err := o.browserLogin(req)
	wantErr(t, err, nil, "invalid_client")
	noSecrets(t, err, req.ClientSecret)
	req.ClientSecret, req.AuthMethod = "", client.AuthMethodBasic
	_, err = o.StartBrowserLogin(o.ctx, req)
	wantErr(t, err, nil, "--client-secret-stdin")
}

// A login again to a confidential profile reuses the secret in the vault:
// OAuthRequestFor carries everything else.
func TestAnyProviderLoginAgainKeepsSettings(t *testing.T) {
	o := newOAuthEnv(t, func(c *fakeidp.Config) { c.ClientSecret, c.ClientAuth = testSecret, "post" })
	req := o.req()
	req.ClientSecret, req.AuthMethod, req.Audience = testSecret, client.AuthMethodPost, "api://orders"
	req.AuthParams = url.Values{"prompt": {"login"}}
	res, _, err := o.browserLogin(req)
	if err != nil {
		t.Fatal(err)
	}
	again := o.OAuthDefaults(OAuthRequest{Profile: res.Profile.Name})
	if again.ClientSecret != "" || again.AuthMethod != client.AuthMethodPost || again.Audience != "api://orders" ||
		again.AuthParams.Get("prompt") != "login" {
		t.Fatalf("login again: %+v", again)
	}
	if _, _, err := o.browserLogin(again); err != nil {
		t.Fatalf("login again: %v", err)
	}
	q := o.idp.Stats().LastAuthorizeQuery
	if url.Values(q).Get("prompt") != "login" || url.Values(q).Get("audience") != "api://orders" {
		t.Fatalf("login again sent %v", q)
	}
}

// Audience, resources and extra parameters reach the authorization request;
// the audience and a single resource the token request too. Parameters
// latch sets itself cannot be replaced.
func TestAnyProviderAuthorizationParameters(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mod       func(*OAuthRequest)
		authorize url.Values // must be in the authorization request
		token     url.Values // must be in the code exchange
		refused   string     // the error, for a request refused
	}{
		{"audience and one resource", func(r *OAuthRequest) { r.Audience, r.Resource = "api://x", []string{"https://api.example/"} },
			url.Values{"audience": {"api://x"}, "resource": {"https://api.example/"}},
			url.Values{"audience": {"api://x"}, "resource": {"https://api.example/"}}, ""},
		{"two resources", func(r *OAuthRequest) { r.Resource = []string{"https://a.example/", "https://b.example/"} },
			url.Values{"resource": {"https://a.example/", "https://b.example/"}}, url.Values{}, ""},
		{"auth params", func(r *OAuthRequest) {
			r.AuthParams = url.Values{"prompt": {"login"}, "login_hint": {"ada@example.com"}, "connector_id": {"github"}}
		}, url.Values{"prompt": {"login"}, "login_hint": {"ada@example.com"}, "connector_id": {"github"}}, url.Values{}, ""},
		{"state refused", func(r *OAuthRequest) { r.AuthParams = url.Values{"state": {"x"}} }, nil, nil, "--auth-param state"},
		{"redirect_uri refused", func(r *OAuthRequest) { r.AuthParams = url.Values{"redirect_uri": {"http://evil.example/"}} },
			nil, nil, "--auth-param redirect_uri"},
		{"code_challenge refused", func(r *OAuthRequest) { r.AuthParams = url.Values{"code_challenge": {"x"}} },
			nil, nil, "--auth-param code_challenge"},
		// A secret would be a flag value, in the browser's history and in
		// the profiles file.
		{"client_secret refused", func(r *OAuthRequest) { r.AuthParams = url.Values{"client_secret": {"x"}} },
			nil, nil, "--client-secret-stdin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOAuthEnv(t)
			req := o.req()
			tc.mod(&req)
			_, page, err := o.browserLogin(req)
			if tc.refused != "" {
				wantErr(t, err, nil, tc.refused)
				if s := o.idp.Stats(); s.Authorizations != 0 {
					t.Fatal("a refused request reached the provider")
				}
				return
			}
			if err != nil {
				t.Fatalf("login: %v (%s)", err, page.Body)
			}
			s := o.idp.Stats()
			for k, want := range tc.authorize {
				if got := s.LastAuthorizeQuery[k]; !slices.Equal(got, want) {
					t.Errorf("authorize %s = %q, want %q", k, got, want)
				}
			}
			for k, want := range tc.token {
				if got := s.LastTokenForm[k]; !slices.Equal(got, want) {
					t.Errorf("token %s = %q, want %q", k, got, want)
				}
			}
			if q := url.Values(s.LastAuthorizeQuery); q.Get("state") == "" || q.Get("code_challenge_method") != "S256" {
				t.Errorf("authorize lost latch's own parameters: %v", q)
			}
		})
	}
}

// freePort is a loopback port nothing listens on (just now).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// A provider that registered one exact redirect gets it, as given, and the
// callback is served there; a busy port or another host is a clear error.
func TestAnyProviderExactRedirect(t *testing.T) {
	for _, tc := range []struct {
		name, host, path string
	}{
		{"localhost with a path", "localhost", "/oauth/cb"},
		{"localhost, root path", "localhost", "/"},
		{"127.0.0.1", "127.0.0.1", "/callback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			redirect := "http://" + net.JoinHostPort(tc.host, strconv.Itoa(freePort(t))) + tc.path
			o := newOAuthEnv(t, func(c *fakeidp.Config) { c.RedirectURIs = []string{redirect} })
			req := o.req()
			req.RedirectURL = redirect
			res, page, err := o.browserLogin(req)
			if err != nil {
				t.Fatalf("login: %v (%d %s)", err, page.Status, page.Body)
			}
			if s := o.idp.Stats(); s.LastRedirectURI != redirect {
				t.Fatalf("sent redirect_uri %q, want %q", s.LastRedirectURI, redirect)
			}
			if res.Profile.RedirectURL != redirect || OAuthRequestFor(res.Profile).RedirectURL != redirect {
				t.Fatalf("profile remembers %q", res.Profile.RedirectURL)
			}
		})
	}
	t.Run("busy port", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		o := newOAuthEnv(t)
		req := o.req()
		req.RedirectURL = "http://localhost:" + port + "/"
		_, err = o.StartBrowserLogin(o.ctx, req)
		wantErr(t, err, nil, "port "+port+" of --redirect-url is in use")
	})
	for _, tc := range []struct{ bad, says string }{
		{"http://example.com:8000/", "the host must be localhost, 127.0.0.1 or [::1]"},
		{"http://10.0.0.1:8000/", "the host must be localhost, 127.0.0.1 or [::1]"},
		{"https://localhost:8000/", "give an http:// loopback URL"},
		{"http://localhost/cb", "name the port"},
		{"http://localhost:8000/?x=1", "no query or fragment"},
	} {
		t.Run("refused "+tc.bad, func(t *testing.T) {
			o := newOAuthEnv(t)
			req := o.req()
			req.RedirectURL = tc.bad
			_, err := o.StartBrowserLogin(o.ctx, req)
			wantErr(t, err, nil, tc.says)
		})
	}
}

// An https provider with a private CA: refused with advice without
// --ca-file, logged in with it, and refreshed with the CA the profile
// remembers.
func TestAnyProviderCAFile(t *testing.T) {
	o := newOAuthEnv(t, func(c *fakeidp.Config) { c.TLS = true })
	_, err := o.StartBrowserLogin(o.ctx, o.req())
	wantErr(t, err, nil, "--ca-file")
	wantErr(t, err, nil, "SSL_CERT_FILE")

	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	req := o.req()
	req.CAFile = bad
	_, err = o.StartBrowserLogin(o.ctx, req)
	wantErr(t, err, nil, "holds no PEM certificate")

	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, o.idp.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	req.CAFile = ca
	b, err := o.StartBrowserLogin(o.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	page := make(chan *fakeidp.Page, 1)
	go func() {
		// The user's browser trusts the CA too.
		p, err := fakeidp.BrowseWith(o.ctx, o.idp.Server.Client(), b.URL)
		if err != nil {
			p = &fakeidp.Page{Body: err.Error()}
		}
		page <- p
	}()
	res, err := o.FinishBrowserLogin(o.ctx, b)
	if p := <-page; err != nil {
		t.Fatalf("login: %v (%s)", err, p.Body)
	}
	if res.Profile.CAFile != ca {
		t.Fatalf("profile remembers CA %q", res.Profile.CAFile)
	}
	o.expire()
	if _, err := o.Token(o.ctx, ""); err != nil {
		t.Fatalf("refresh with the remembered CA: %v", err)
	}
}

// A provider given by its endpoints: no discovery document is read, at
// login or at refresh, and ID tokens are still verified with the key set
// given.
func TestAnyProviderNoDiscovery(t *testing.T) {
	o := newOAuthEnv(t)
	u := o.idp.URL
	req := OAuthRequest{Issuer: u, ClientID: "latch-cli", Endpoints: client.Endpoints{AuthURL: u + "/authorize",
		TokenURL: u + "/token", RevokeURL: u + "/revoke", UserinfoURL: u + "/userinfo", JWKSURL: u + "/jwks"}}
	res, page, err := o.browserLogin(req)
	if err != nil {
		t.Fatalf("login: %v (%s)", err, page.Body)
	}
	if res.Profile.Endpoints == nil || res.Profile.Endpoints.Token != u+"/token" || res.Profile.Username != "ada" {
		t.Fatalf("profile %+v", res.Profile)
	}
	if o.stored(res.Profile.Name).ID == "" {
		t.Fatal("the verified ID token was not kept")
	}
	o.expire()
	if _, err := o.Token(o.ctx, ""); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if lr, err := o.Logout(o.ctx, "", false, false); err != nil || lr.Revoked != 1 {
		t.Fatalf("logout %+v %v", lr, err)
	}
	if s := o.idp.Stats(); s.Discoveries != 0 || s.Refreshes != 1 {
		t.Fatalf("%d discoveries, %d refreshes", s.Discoveries, s.Refreshes)
	}

	// openid without keys to verify the ID token is refused up front.
	req.Endpoints.JWKSURL, req.Scopes = "", []string{"openid"}
	_, err = o.StartBrowserLogin(o.ctx, req)
	wantErr(t, err, nil, "--jwks-url")
}

// GitHub's device flow: no discovery, form-encoded answers unless JSON is
// asked for, authorization_pending then slow_down (with status 200), no ID
// token, no refresh token, no expiry, and a user endpoint without sub.
func TestAnyProviderGitHubDevice(t *testing.T) {
	t.Parallel()
	o := newOAuthEnv(t, func(c *fakeidp.Config) {
		c.GitHub, c.DevicePending, c.DeviceSlowDown = true, 1, true
		c.ClientID = "Iv1.0123456789abcdef"
	})
	u := o.idp.URL
	req := OAuthRequest{ClientID: "Iv1.0123456789abcdef", Endpoints: client.Endpoints{DeviceURL: u + "/login/device/code",
		TokenURL: u + "/login/oauth/access_token", UserinfoURL: u + "/user"}}
	d, err := o.StartDeviceLogin(o.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if d.VerificationURI != u+"/login/device" || d.UserCode == "" {
		t.Fatalf("device login %+v", d)
	}
	res, err := o.FinishDeviceLogin(o.ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if s := o.idp.Stats(); s.DevicePolls != 3 || s.Discoveries != 0 {
		t.Fatalf("%d polls (want pending, slow_down, approval), %d discoveries", s.DevicePolls, s.Discoveries)
	}
	if scope := o.idp.Stats().LastDeviceForm["scope"]; len(scope) != 0 {
		t.Errorf("OpenID scopes sent to a plain OAuth provider: %q", scope)
	}
	p := res.Profile
	if p.Issuer != u || p.Username != "ada" || p.Endpoints == nil || p.Endpoints.Device != u+"/login/device/code" {
		t.Fatalf("profile %+v", p)
	}
	st := o.stored(p.Name)
	if st.Refresh != "" || st.ID != "" {
		t.Fatal("a refresh or ID token appeared from nowhere")
	}
	// No expiry: the token is handed out long after any default lifetime.
	o.clock.Add(30 * 24 * time.Hour)
	tok, err := o.Token(o.ctx, "")
	if err != nil || tok != st.Access {
		t.Fatalf("token a month later: %v", err)
	}
	// A login again needs only the profile.
	if again := OAuthRequestFor(p); again.Endpoints != req.Endpoints || again.ClientID != req.ClientID {
		t.Fatalf("login again: %+v", again)
	}
	// Logging out cannot end a token that never expires: the user is
	// told to revoke it at the provider, not that it will expire.
	lr, err := o.Logout(o.ctx, p.Name, false, false)
	if err != nil || !strings.Contains(lr.ProviderNotTold, "does not expire") ||
		!strings.Contains(lr.ProviderNotTold, "revoke it at the provider") {
		t.Fatalf("logout: %+v, %v", lr, err)
	}
}

// The device flow authenticates a confidential client at the device
// authorization endpoint too (RFC 8628 §3.1), which x/oauth2 leaves to
// latch, and at the token endpoint while polling.
func TestAnyProviderClientSecretDevice(t *testing.T) {
	for _, method := range []string{"basic", "post"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			o := newOAuthEnv(t, func(c *fakeidp.Config) {
				c.ClientSecret, c.ClientAuth, c.AuthMethods = testSecret, method, []string{"client_secret_" + method}
			})
			req := o.req()
			req.ClientSecret, req.Audience = testSecret, "api://device"
			d, err := o.StartDeviceLogin(o.ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			s := o.idp.Stats()
			if s.LastClientAuth != method || url.Values(s.LastDeviceForm).Get("audience") != "api://device" {
				t.Fatalf("device authorization: auth %q, form %v", s.LastClientAuth, s.LastDeviceForm)
			}
			if _, err := o.FinishDeviceLogin(o.ctx, d); err != nil {
				t.Fatal(err)
			}
			if s := o.idp.Stats(); s.LastClientAuth != method || url.Values(s.LastTokenForm).Get("audience") != "api://device" {
				t.Fatalf("polling: auth %q, form %v", s.LastClientAuth, s.LastTokenForm)
			}
		})
	}
}

// A CA file given by a relative path (the interface's field takes one as
// typed) is remembered absolute: the refresh, run from another directory,
// still finds it.
func TestAnyProviderCAFileRelative(t *testing.T) {
	o := newOAuthEnv(t, func(c *fakeidp.Config) { c.TLS = true })
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, o.idp.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	req := o.req()
	req.CAFile = "ca.pem"
	b, err := o.StartBrowserLogin(o.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	page := make(chan *fakeidp.Page, 1)
	go func() {
		p, err := fakeidp.BrowseWith(o.ctx, o.idp.Server.Client(), b.URL)
		if err != nil {
			p = &fakeidp.Page{Body: err.Error()}
		}
		page <- p
	}()
	res, err := o.FinishBrowserLogin(o.ctx, b)
	if p := <-page; err != nil {
		t.Fatalf("login: %v (%s)", err, p.Body)
	}
	if want, _ := filepath.EvalSymlinks(ca); res.Profile.CAFile != ca && res.Profile.CAFile != want {
		t.Fatalf("profile remembers CA %q, want %q", res.Profile.CAFile, ca)
	}
	t.Chdir(t.TempDir())
	o.expire()
	if _, err := o.Token(o.ctx, ""); err != nil {
		t.Fatalf("refresh from another directory: %v", err)
	}
}

// A revocation the provider refuses because of the client's credentials
// (a secret rotated there) revoked nothing: logout keeps the saved session
// and says so, rather than forgetting a token still alive at the provider.
func TestAnyProviderLogoutClientRefusedKeepsTokens(t *testing.T) {
	o := newOAuthEnv(t, func(c *fakeidp.Config) { c.ClientSecret, c.AuthMethods = testSecret, []string{"client_secret_basic"} })
	req := o.req()
	req.ClientSecret = testSecret
	res, page, err := o.browserLogin(req)
	if err != nil {
		t.Fatalf("login: %v (page %s)", err, page.Body)
	}
	name := res.Profile.Name
	if err := o.Secrets.Set(o.ctx, vault.ClientSecretKey(name), []byte("rotated-"+testSecret)); err != nil {
		t.Fatal(err)
	}
	_, err = o.Logout(o.ctx, name, false, false)
	wantErr(t, err, nil, "invalid_client")
	wantErr(t, err, nil, "--local")
	noSecrets(t, err, "rotated-"+testSecret)
	if rt, err := o.Tokens().RefreshToken(o.ctx, name); err != nil || rt == "" {
		t.Fatalf("the saved session is gone: %q, %v", rt, err)
	}
	if s := o.idp.Stats(); len(s.Revocations) != 0 {
		t.Fatalf("revocations: %v", s.Revocations)
	}
}
