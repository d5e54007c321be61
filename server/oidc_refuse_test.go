package server

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
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
			p := e.newBrowser().get(tc.url)
			q := e.callback(t, a, p)
			if q.Get("error") != tc.want || q.Get("code") != "" {
				t.Errorf("error = %q (%s), want %s", q.Get("error"), q.Get("error_description"), tc.want)
			}
		})
	}
	// Refused with a page, never a redirect: the redirect URI is not one of
	// the client's (RFC 8252 §7.3: any port, but the same host and path).
	for _, redirect := range []string{
		"http://127.0.0.1:5555/other", "http://localhost:5555/callback", "http://127.0.0.2:5555/callback",
		"https://127.0.0.1:5555/callback", "http://127.0.0.1:5555/callback?x=1", "http://127.0.0.1:5555@evil.example/callback",
		"http://evil.example/callback", "",
	} {
		t.Run("redirect "+redirect, func(t *testing.T) {
			cfg := *a.cfg
			cfg.RedirectURL = redirect
			b := &authorization{cfg: &cfg, verifier: a.verifier, state: a.state, nonce: a.nonce}
			p := e.newBrowser().get(b.url())
			if p.redirect != nil || p.status != http.StatusBadRequest {
				t.Fatalf("want an error page, got %d redirect %v", p.status, p.redirect)
			}
		})
	}
	t.Run("unknown client", func(t *testing.T) {
		cfg := *a.cfg
		cfg.ClientID = "nobody"
		p := e.newBrowser().get((&authorization{cfg: &cfg, verifier: a.verifier}).url())
		if p.redirect != nil || p.status != http.StatusBadRequest {
			t.Fatalf("want an error page, got %d redirect %v", p.status, p.redirect)
		}
	})
}

func TestOIDCLoginPage(t *testing.T) {
	e := newOPEnv(t)
	e.register("alice", "alice@example.com")
	a := newAuthorization(e.cliConfig("127.0.0.1:5555"))
	b := e.newBrowser()
	p := b.get(a.url())
	for name, ac := range map[string]string{"username": "username", "password": "current-password"} {
		if f := field(p, name); f == nil || attr(f, "autocomplete") != ac {
			t.Errorf("field %s: want autocomplete=%s", name, ac)
		}
	}

	// No CSRF token: 403 and nothing happens (the login still works after).
	r := b.submit(p, map[string]string{"username": "alice", "password": goodPassword, "csrf": "\x00"})
	if r.status != http.StatusForbidden {
		t.Fatalf("no CSRF token: %d", r.status)
	}
	if n := e.srv.hasher.verifies.Load(); n != 0 {
		t.Errorf("the password was checked %d times without a CSRF token", n)
	}
	// A token of another browser is no better.
	other := e.newBrowser()
	otherPage := other.get(a.url())
	r = b.submit(p, map[string]string{"username": "alice", "password": goodPassword, "csrf": attr(field(otherPage, "csrf"), "value")})
	if r.status != http.StatusForbidden {
		t.Fatalf("another browser's CSRF token: %d", r.status)
	}

	// A wrong password shows the form again, with an error and the name.
	r = b.submit(p, map[string]string{"username": "alice", "password": "wrong password"})
	if r.status != http.StatusUnauthorized || !strings.Contains(r.text(), "wrong") || attr(field(r, "username"), "value") != "alice" {
		t.Fatalf("wrong password: %d %s", r.status, r.text())
	}
	q := e.callback(t, a, b.next(b.login(r, "alice")))

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
	if p := b.get(e.srv.cfg.Issuer + "/authorize/callback?id=" + attr(field(p, "request"), "value")); p.redirect != nil && p.redirect.Query().Get("code") != "" {
		t.Errorf("a second code for one authorization: %v", p.redirect)
	}
}

func TestOIDCCodeNeedsVerifier(t *testing.T) {
	e := newOPEnv(t)
	e.register("alice", "alice@example.com")
	a := newAuthorization(e.cliConfig("127.0.0.1:5555"))
	q := e.codeFlow(t, a, "alice", nil)
	_, err := a.cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier()))
	if oauthErr(err) != "invalid_grant" {
		t.Fatalf("wrong verifier: %v", err)
	}
}

func TestOIDCCallbackOtherBrowser(t *testing.T) {
	e := newOPEnv(t)
	e.register("alice", "alice@example.com")
	a := newAuthorization(e.cliConfig("127.0.0.1:5555"))
	b := e.newBrowser()
	done := b.login(b.get(a.url()), "alice")
	cont := find(done.doc, func(n *htmlNode) bool { return n.Data == "a" && attr(n, "id") == "continue" })
	if cont == nil {
		t.Fatalf("no continue link: %s", done.body)
	}
	if p := e.newBrowser().get(attr(cont, "href")); p.redirect != nil || p.status != http.StatusForbidden {
		t.Fatalf("another browser collected the answer: %d %v", p.status, p.redirect)
	}
}

func TestOIDCRequestBoundToBrowser(t *testing.T) {
	e := newOPEnv(t, withClients(t))
	e.register("alice", "alice@example.com")
	e.register("eve", "eve@example.com")
	a := newAuthorization(e.oauthConfig("notes", "", "http://127.0.0.1:7777/cb"))
	b := e.newBrowser()
	login := b.get(a.url())
	consent := b.login(login, "alice")
	// Another browser that learnt the request id cannot log in to it…
	other := e.newBrowser()
	otherLogin := other.get(e.srv.cfg.Issuer + "/login?authRequestID=" + url.QueryEscape(attr(field(login, "request"), "value")))
	if p := other.login(otherLogin, "eve"); p.status != http.StatusBadRequest || field(p, "decision") != nil {
		t.Fatalf("another browser logged in to a bound request: %d %s", p.status, p.text())
	}
	// …nor answer its consent, even with a CSRF token of its own.
	if p := other.submit(consent, map[string]string{"csrf": attr(field(otherLogin, "csrf"), "value")}, "decision", "approve"); p.status != http.StatusBadRequest {
		t.Fatalf("consent from another browser: %d", p.status)
	}
	// The first browser still can.
	if q := e.callback(t, a, b.next(b.submit(consent, nil, "decision", "approve"))); q.Get("code") == "" {
		t.Fatalf("no code: %v", q)
	}
}

func TestOIDCLoginPageRateLimited(t *testing.T) {
	e := newOPEnv(t, func(c *Config) { c.RateAccount = 2 }) // a burst of one per identifier
	e.register("alice", "alice@example.com")
	a := newAuthorization(e.cliConfig("127.0.0.1:5555"))
	b := e.newBrowser()
	p := b.submit(b.get(a.url()), map[string]string{"username": "alice", "password": "wrong password"})
	if p.status != http.StatusUnauthorized {
		t.Fatalf("first attempt: %d", p.status)
	}
	p = b.login(p, "alice")
	if p.status != http.StatusTooManyRequests || !strings.Contains(p.text(), "Too many attempts") || field(p, "password") == nil {
		t.Fatalf("second attempt: want the form with a rate-limit error, got %d %s", p.status, p.text())
	}
	if n := e.srv.metrics.logins.get("limited"); n != 1 {
		t.Errorf("latch_logins_total{result=limited} = %d", n)
	}
}
