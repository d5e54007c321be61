package server

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/latch-dev/latch/internal/webform"
)

func TestOIDCAuthorizeRefusals(t *testing.T) {
	e := newOPEnv(t)
	a := newAuthorization(e.cliConfig("127.0.0.1:5555"))
	// Refused with an error redirect to the client (with state and iss).
	for _, tc := range []struct {
		name, url, want string
	}{
		{"no PKCE", a.cfg.AuthCodeURL(a.state), "invalid_request"},
		{"plain PKCE", a.cfg.AuthCodeURL(a.state, oauth2.SetAuthURLParam("code_challenge", a.verifier),
			oauth2.SetAuthURLParam("code_challenge_method", "plain")), "invalid_request"},
		{"PKCE without method", a.cfg.AuthCodeURL(a.state, oauth2.SetAuthURLParam("code_challenge", a.verifier)), "invalid_request"},
		{"implicit", a.url(oauth2.SetAuthURLParam("response_type", "token")), "unsupported_response_type"},
		{"prompt none", a.url(oauth2.SetAuthURLParam("prompt", "none")), "login_required"},
		{"no scope", a.url(oauth2.SetAuthURLParam("scope", "")), "invalid_scope"},
		{"unknown scope", a.url(oauth2.SetAuthURLParam("scope", "admin")), "invalid_scope"},
		// Refused by op, behind our checks: the redirect still has iss.
		{"bad id_token_hint", a.url(oauth2.SetAuthURLParam("id_token_hint", "not.a.token")), "login_required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := e.newBrowser().Get(tc.url)
			q := e.callback(t, a, p)
			if q.Get("error") != tc.want || q.Get("code") != "" {
				t.Errorf("error = %q (%s), want %s", q.Get("error"), q.Get("error_description"), tc.want)
			}
		})
	}
	// Refused with a page, never a redirect: the redirect URI is not one of
	// the client's (latch-cli takes any loopback port and path, on
	// localhost, 127.0.0.1 or [::1]: TestRedirectRule).
	for _, redirect := range []string{
		"http://127.0.0.2:5555/callback",
		"https://127.0.0.1:5555/callback", "http://127.0.0.1:5555/callback?x=1", "http://127.0.0.1:5555@evil.example/callback",
		"http://evil.example/callback", "",
	} {
		t.Run("redirect "+redirect, func(t *testing.T) {
			cfg := *a.cfg
			cfg.RedirectURL = redirect
			b := &authorization{cfg: &cfg, verifier: a.verifier, state: a.state, nonce: a.nonce}
			p := e.newBrowser().Get(b.url())
			if p.Redirect != nil || p.Status != http.StatusBadRequest {
				t.Fatalf("want an error page, got %d redirect %v", p.Status, p.Redirect)
			}
		})
	}
	t.Run("unknown client", func(t *testing.T) {
		cfg := *a.cfg
		cfg.ClientID = "nobody"
		p := e.newBrowser().Get((&authorization{cfg: &cfg, verifier: a.verifier}).url())
		if p.Redirect != nil || p.Status != http.StatusBadRequest {
			t.Fatalf("want an error page, got %d redirect %v", p.Status, p.Redirect)
		}
	})
}

func TestOIDCLoginPage(t *testing.T) {
	e := newOPEnv(t)
	e.register("alice", "alice@example.com")
	a := newAuthorization(e.cliConfig("127.0.0.1:5555"))
	b := e.newBrowser()
	p := b.Get(a.url())
	for name, ac := range map[string]string{"username": "username", "password": "current-password"} {
		if f := p.Field(name); f == nil || webform.Attr(f, "autocomplete") != ac {
			t.Errorf("field %s: want autocomplete=%s", name, ac)
		}
	}

	// No CSRF token: 403 and nothing happens (the login still works after).
	r := b.Submit(p, map[string]string{"username": "alice", "password": goodPassword, "csrf": "\x00"})
	if r.Status != http.StatusForbidden {
		t.Fatalf("no CSRF token: %d", r.Status)
	}
	if n := e.srv.hasher.verifies.Load(); n != 0 {
		t.Errorf("the password was checked %d times without a CSRF token", n)
	}
	// A token of another browser is no better.
	other := e.newBrowser()
	otherPage := other.Get(a.url())
	r = b.Submit(p, map[string]string{"username": "alice", "password": goodPassword, "csrf": webform.Attr(otherPage.Field("csrf"), "value")})
	if r.Status != http.StatusForbidden {
		t.Fatalf("another browser's CSRF token: %d", r.Status)
	}

	// A wrong password shows the form again, with an error and the name.
	r = b.Submit(p, map[string]string{"username": "alice", "password": "wrong password"})
	if r.Status != http.StatusUnauthorized || !strings.Contains(r.Text(), "wrong") || webform.Attr(r.Field("username"), "value") != "alice" {
		t.Fatalf("wrong password: %d %s", r.Status, r.Text())
	}
	q := e.callback(t, a, b.Next(submitLogin(t, b, r, "alice")))

	// The code is good once; a second redemption fails and ends the
	// session the first one opened (RFC 6749 §4.1.2).
	tok, err := a.cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(a.verifier))
	if oauthErr(err) != "invalid_grant" {
		t.Fatalf("second redemption: %v", err)
	}
	if r := e.bearer("GET", "/auth/me", tok.AccessToken, nil); r.Status != http.StatusUnauthorized {
		t.Errorf("after a code reuse the session lives on: %d", r.Status)
	}
	// The answer cannot be collected again either.
	if p := b.Get(e.srv.cfg.Issuer + "/authorize/callback?id=" + webform.Attr(p.Field("request"), "value")); p.Redirect != nil && p.Redirect.Query().Get("code") != "" {
		t.Errorf("a second code for one authorization: %v", p.Redirect)
	}
}

func TestOIDCCallbackOtherBrowser(t *testing.T) {
	e := newOPEnv(t)
	e.register("alice", "alice@example.com")
	a := newAuthorization(e.cliConfig("127.0.0.1:5555"))
	b := e.newBrowser()
	done := submitLogin(t, b, b.Get(a.url()), "alice")
	cont := webform.Find(done.Doc, func(n *html.Node) bool { return n.Data == "a" && webform.Attr(n, "id") == "continue" })
	if cont == nil {
		t.Fatalf("no continue link: %s", done.Body)
	}
	if p := e.newBrowser().Get(webform.Attr(cont, "href")); p.Redirect != nil || p.Status != http.StatusForbidden {
		t.Fatalf("another browser collected the answer: %d %v", p.Status, p.Redirect)
	}
}

func TestOIDCRequestBoundToBrowser(t *testing.T) {
	e := newOPEnv(t, withClients(t))
	e.register("alice", "alice@example.com")
	e.register("eve", "eve@example.com")
	a := newAuthorization(e.oauthConfig("notes", "", "http://127.0.0.1:7777/cb"))
	b := e.newBrowser()
	login := b.Get(a.url())
	consent := submitLogin(t, b, login, "alice")
	// Another browser that learnt the request id cannot log in to it…
	other := e.newBrowser()
	otherLogin := other.Get(e.srv.cfg.Issuer + "/login?authRequestID=" + url.QueryEscape(webform.Attr(login.Field("request"), "value")))
	if p := submitLogin(t, other, otherLogin, "eve"); p.Status != http.StatusBadRequest || p.Field("decision") != nil {
		t.Fatalf("another browser logged in to a bound request: %d %s", p.Status, p.Text())
	}
	// …nor answer its consent, even with a CSRF token of its own.
	if p := other.Submit(consent, map[string]string{"csrf": webform.Attr(otherLogin.Field("csrf"), "value")}, "decision", "approve"); p.Status != http.StatusBadRequest {
		t.Fatalf("consent from another browser: %d", p.Status)
	}
	// The first browser still can.
	if q := e.callback(t, a, b.Next(b.Submit(consent, nil, "decision", "approve"))); q.Get("code") == "" {
		t.Fatalf("no code: %v", q)
	}
}

func TestOIDCLoginPageRateLimited(t *testing.T) {
	e := newOPEnv(t, func(c *Config) { c.RateAccount = 2 }) // a burst of one per identifier
	e.register("alice", "alice@example.com")
	a := newAuthorization(e.cliConfig("127.0.0.1:5555"))
	b := e.newBrowser()
	p := b.Submit(b.Get(a.url()), map[string]string{"username": "alice", "password": "wrong password"})
	if p.Status != http.StatusUnauthorized {
		t.Fatalf("first attempt: %d", p.Status)
	}
	p = submitLogin(t, b, p, "alice")
	if p.Status != http.StatusTooManyRequests || !strings.Contains(p.Text(), "Too many attempts") || p.Field("password") == nil {
		t.Fatalf("second attempt: want the form with a rate-limit error, got %d %s", p.Status, p.Text())
	}
	if n := e.srv.metrics.logins.get("limited"); n != 1 {
		t.Errorf("latch_logins_total{result=limited} = %d", n)
	}
}
