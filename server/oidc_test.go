package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latch-dev/latch/internal/webform"
)

// authorization is one run of the browser part of the code flow.
type authorization struct {
	cfg      *oauth2.Config
	verifier string
	state    string
	nonce    string
}

func newAuthorization(cfg *oauth2.Config) *authorization {
	return &authorization{cfg: cfg, verifier: oauth2.GenerateVerifier(),
		state: fmt.Sprint("st-", rand.Int()), nonce: fmt.Sprint("n-", rand.Int())}
}

// url is the authorization URL with S256 PKCE, state and nonce.
func (a *authorization) url(extra ...oauth2.AuthCodeOption) string {
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(a.verifier),
		oauth2.SetAuthURLParam("nonce", a.nonce)}, extra...)
	return a.cfg.AuthCodeURL(a.state, opts...)
}

// submitLogin submits the login form of p as name with goodPassword.
func submitLogin(t testing.TB, b *webform.Browser, p *webform.Page, name string) *webform.Page {
	t.Helper()
	if p.Field("username") == nil {
		t.Fatalf("want the login page, got %d %s: %s", p.Status, p.URL, p.Body)
	}
	return b.Submit(p, map[string]string{"username": name, "password": goodPassword})
}

// callback is where the browser was sent back to the client, checked
// against the authorization: redirect URI, state and iss.
func (e *env) callback(t *testing.T, a *authorization, p *webform.Page) url.Values {
	t.Helper()
	if p.Redirect == nil {
		t.Fatalf("want a redirect to the client, got %d %s: %s", p.Status, p.URL, p.Body)
	}
	want, _ := url.Parse(a.cfg.RedirectURL)
	if p.Redirect.Host != want.Host || p.Redirect.Path != want.Path {
		t.Fatalf("redirected to %s, want %s", p.Redirect, a.cfg.RedirectURL)
	}
	q := p.Redirect.Query()
	if q.Get("state") != a.state {
		t.Errorf("state = %q, want %q", q.Get("state"), a.state)
	}
	if q.Get("iss") != e.srv.cfg.Issuer {
		t.Errorf("iss = %q, want %q (RFC 9207)", q.Get("iss"), e.srv.cfg.Issuer)
	}
	return q
}

// codeFlow logs name in through the browser and returns the callback's
// query; extra pages (a code step) are handled by step.
func (e *env) codeFlow(t *testing.T, a *authorization, name string, step func(*webform.Browser, *webform.Page) *webform.Page) url.Values {
	t.Helper()
	b := e.newBrowser()
	p := submitLogin(t, b, b.Get(a.url()), name)
	if step != nil {
		p = step(b, p)
	}
	return e.callback(t, a, b.Next(p))
}

// verifyID checks an ID token's signature through the JWKS, iss, aud and
// nonce with go-oidc, and returns it.
func (e *env) verifyID(t *testing.T, tok *oauth2.Token, clientID, nonce string) *oidc.IDToken {
	t.Helper()
	ctx := context.Background()
	prov, err := oidc.NewProvider(ctx, e.srv.cfg.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	id, err := prov.Verifier(&oidc.Config{ClientID: clientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	if id.Nonce != nonce {
		t.Errorf("nonce = %q, want %q", id.Nonce, nonce)
	}
	return id
}

// userID is the account API's id of the user an access token speaks for.
func (e *env) userID(access string) string {
	e.t.Helper()
	r := e.bearer("GET", "/auth/me", access, nil)
	if r.Status != 200 {
		e.t.Fatalf("/auth/me: %d %s", r.Status, r.Body)
	}
	return fmt.Sprint(r.json(e.t)["id"])
}

func TestOIDCCodeFlowPKCE(t *testing.T) {
	e := newOPEnv(t)
	e.register("alice", "alice@example.com")
	for _, host := range []string{"127.0.0.1", "[::1]"} {
		t.Run(host, func(t *testing.T) {
			a := newAuthorization(e.cliConfig(fmt.Sprintf("%s:%d", host, 20000+rand.IntN(40000))))
			q := e.codeFlow(t, a, "alice", nil)
			tok, err := a.cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(a.verifier))
			if err != nil {
				t.Fatal(err)
			}
			if tok.RefreshToken == "" {
				t.Error("no refresh token for offline_access")
			}
			id := e.verifyID(t, tok, CLIClientID, a.nonce)
			// The access token works on the account API, for the same user
			// as the ID token's subject.
			if uid := e.userID(tok.AccessToken); id.Subject != uid {
				t.Errorf("sub = %s, account API id = %s", id.Subject, uid)
			}
			// The grant is a session of the account API's list.
			r := e.bearer("GET", "/auth/sessions", tok.AccessToken, nil)
			if r.Status != 200 || !strings.Contains(string(r.Body), "latch (command line) (OAuth)") {
				t.Errorf("sessions: %d %s", r.Status, r.Body)
			}
		})
	}
}

func TestOIDCCodeFlowByEmail(t *testing.T) {
	e := newOPEnv(t)
	e.register("alice", "alice@example.com")
	a := newAuthorization(e.cliConfig("127.0.0.1:4242"))
	if q := e.codeFlow(t, a, "alice@example.com", nil); q.Get("code") == "" {
		t.Fatalf("no code: %v", q)
	}
}

func TestOIDCCodeFlowMFA(t *testing.T) {
	e := newOPEnv(t)
	u := e.enrol("bob")
	for _, tc := range []struct {
		name string
		code func() string
	}{
		{"totp", func() string { e.clock.Add(30 * time.Second); return totpCode(t, u.secret, e.clock.Now()) }},
		{"backup code", func() string { return u.backup[0] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuthorization(e.cliConfig("127.0.0.1:4242"))
			q := e.codeFlow(t, a, "bob", func(b *webform.Browser, p *webform.Page) *webform.Page {
				if f := p.Field("code"); f == nil || webform.Attr(f, "autocomplete") != "one-time-code" {
					t.Fatalf("want the code step: %s", p.Body)
				}
				p = b.Submit(p, map[string]string{"code": "000000"})
				if p.Status != http.StatusUnauthorized || !strings.Contains(p.Text(), "wrong") || p.Field("code") == nil {
					t.Fatalf("wrong code: want the code step again with an error, got %d %s", p.Status, p.Text())
				}
				return b.Submit(p, map[string]string{"code": tc.code()})
			})
			tok, err := a.cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(a.verifier))
			if err != nil {
				t.Fatal(err)
			}
			id := e.verifyID(t, tok, CLIClientID, a.nonce)
			var claims struct{ AMR []string }
			id.Claims(&claims)
			if strings.Join(claims.AMR, " ") != "pwd otp" {
				t.Errorf("amr = %v", claims.AMR)
			}
		})
	}
}
