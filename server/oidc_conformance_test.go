package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/latch-dev/latch/internal/randcheck"
	"github.com/latch-dev/latch/internal/webform"
)

// Tests of docs/conformance.md's claims about the provider that the flow
// tests do not check by themselves.

func TestOIDCDiscoveryGrantAndResponseTypes(t *testing.T) {
	e := newOPEnv(t, withClients(t))
	e.register("alice", "alice@example.com")
	d := e.do("GET", "/.well-known/openid-configuration", nil).json(t)
	for k, want := range map[string]string{
		"response_types_supported": `["code"]`,
		"response_modes_supported": `["query"]`,
		"grant_types_supported":    `["authorization_code","refresh_token","urn:ietf:params:oauth:grant-type:device_code"]`,
	} {
		if got, _ := json.Marshal(d[k]); string(got) != want {
			t.Errorf("%s = %s, want exactly %s", k, got, want)
		}
	}
	// The resource owner password grant is refused, for a public and a
	// confidential client alike, with a right password; so are the other
	// grants latch does not offer.
	pw := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {goodPassword}, "scope": {"openid"}}
	for _, tc := range []struct {
		name   string
		form   url.Values
		client []string
	}{
		{"password, public", withValues(pw, "client_id", CLIClientID), nil},
		{"password, confidential", pw, []string{"web", webSecret}},
		{"client_credentials", url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}}, []string{"web", webSecret}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, m := e.postForm("/oauth/token", tc.form, tc.client...)
			if status != http.StatusBadRequest || m["error"] != "unsupported_grant_type" || m["access_token"] != nil {
				t.Fatalf("%d %v, want 400 unsupported_grant_type", status, m)
			}
		})
	}
}

func withValues(v url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, x := range v {
		out[k] = x
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

// postPage submits p's only form and checks the answer is a page of the form's
// own URL: no redirect of any kind was followed (webform itself fails on
// a 307 or 308 to a POST, even to another host).
func postPage(t *testing.T, b *webform.Browser, p *webform.Page, values map[string]string, button ...string) *webform.Page {
	t.Helper()
	form := webform.Find(p.Doc, func(n *html.Node) bool { return n.Data == "form" })
	if form == nil {
		t.Fatalf("no form on %s: %s", p.URL, p.Text())
	}
	action, _ := p.URL.Parse(webform.Attr(form, "action"))
	r := b.Submit(p, values, button...)
	if r.Redirect != nil || r.Status/100 == 3 || r.URL.String() != action.String() {
		t.Fatalf("POST %s answered %d at %s (redirect %v): want a page, no redirect", action, r.Status, r.URL, r.Redirect)
	}
	return r
}

// Every form that carries a credential or an answer — password, second
// factor, consent, user code — is answered with a page, never a redirect
// (RFC 9700 §4.12: a 307 would make the browser resend the password).
func TestOIDCNoRedirectAfterPost(t *testing.T) {
	e := newOPEnv(t, withClients(t))
	e.register("alice", "alice@example.com")
	u := e.enrol("bob")
	t.Run("password and code", func(t *testing.T) {
		a := newAuthorization(e.cliConfig("127.0.0.1:5555"))
		b := e.newBrowser()
		p := postPage(t, b, b.Get(a.url()), map[string]string{"username": "bob", "password": "wrong password"})
		p = postPage(t, b, p, map[string]string{"username": "bob", "password": goodPassword})
		p = postPage(t, b, p, map[string]string{"code": "000000"})
		e.clock.Add(30 * time.Second)
		p = postPage(t, b, p, map[string]string{"code": totpCode(t, u.secret, e.clock.Now())})
		if q := e.callback(t, a, b.Next(p)); q.Get("code") == "" {
			t.Fatalf("no code: %v", q)
		}
	})
	for _, decision := range []string{"approve", "deny"} {
		t.Run("consent "+decision, func(t *testing.T) {
			a := newAuthorization(e.oauthConfig("notes", "", "http://127.0.0.1:7777/cb"))
			b := e.newBrowser()
			p := postPage(t, b, b.Get(a.url()), map[string]string{"username": "alice", "password": goodPassword})
			p = postPage(t, b, p, nil, "decision", decision)
			e.callback(t, a, b.Next(p))
		})
	}
	t.Run("device", func(t *testing.T) {
		da := e.startDevice(t, e.cliConfig("127.0.0.1"))
		b := e.newBrowser()
		p := postPage(t, b, b.Get(e.srv.cfg.Issuer+devicePath), map[string]string{"user_code": "BCDF-GHJK"})
		p = postPage(t, b, p, map[string]string{"user_code": da.UserCode})
		p = postPage(t, b, p, map[string]string{"username": "alice", "password": goodPassword})
		if p = postPage(t, b, p, nil, "decision", "approve"); !strings.Contains(p.Text(), "approved") {
			t.Fatalf("device result: %s", p.Text())
		}
	})
}

// exchange redeems a code at the token endpoint as latch-cli with the
// given form fields, as a raw form so that a field can be left out.
func (e *env) exchange(code string, fields ...string) (int, map[string]any) {
	return e.postForm("/oauth/token", withValues(url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"client_id": {CLIClientID}}, fields...))
}

// A code whose request carried a PKCE challenge is redeemed only with its
// verifier: not with another, and not without one (the downgrade of RFC
// 9700 §4.8.2); a verifier for a code issued without a challenge is
// refused too. The code survives the refused attempts, so each refusal is
// the verifier's doing.
func TestOIDCCodeNeedsVerifier(t *testing.T) {
	e := newOPEnv(t, withClients(t))
	e.register("alice", "alice@example.com")
	a := newAuthorization(e.cliConfig("127.0.0.1:5555"))
	code := e.codeFlow(t, a, "alice", nil).Get("code")
	redirect := a.cfg.RedirectURL
	for _, tc := range []struct {
		name   string
		fields []string
		want   string
	}{
		{"another verifier", []string{"redirect_uri", redirect, "code_verifier", oauth2.GenerateVerifier()}, "invalid_grant"},
		// op answers a missing parameter as RFC 6749 §5.2 says:
		// invalid_request ("code_verifier required").
		{"no verifier", []string{"redirect_uri", redirect}, "invalid_request"},
		{"empty verifier", []string{"redirect_uri", redirect, "code_verifier", ""}, "invalid_request"},
		{"the challenge as verifier", []string{"redirect_uri", redirect, "code_verifier", oauth2.S256ChallengeFromVerifier(a.verifier)}, "invalid_grant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, m := e.exchange(code, tc.fields...)
			if status != http.StatusBadRequest || m["error"] != tc.want || m["access_token"] != nil {
				t.Fatalf("%d %v, want 400 %s", status, m, tc.want)
			}
		})
	}
	if status, m := e.exchange(code, "redirect_uri", redirect, "code_verifier", a.verifier); status != 200 || m["access_token"] == nil {
		t.Fatalf("the right verifier after refusals: %d %v", status, m)
	}

	// A confidential client may do without PKCE; then a code_verifier at
	// the token endpoint is refused, not ignored (RFC 9700 §2.1.1).
	web := e.oauthConfig("web", webSecret, "https://portal.example/cb")
	wa := newAuthorization(web)
	b := e.newBrowser()
	p := submitLogin(t, b, b.Get(web.AuthCodeURL(wa.state, oauth2.SetAuthURLParam("nonce", wa.nonce))), "alice")
	p = b.Next(b.Submit(p, nil, "decision", "approve"))
	webCode := e.callback(t, wa, p).Get("code")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {webCode}, "redirect_uri": {web.RedirectURL}}
	if status, m := e.postForm("/oauth/token", withValues(form, "code_verifier", oauth2.GenerateVerifier()), "web", webSecret); status != http.StatusBadRequest || m["access_token"] != nil {
		t.Fatalf("a verifier for a code without challenge: %d %v", status, m)
	}
	if status, m := e.postForm("/oauth/token", form, "web", webSecret); status != 200 || m["access_token"] == nil {
		t.Fatalf("the confidential client without PKCE: %d %v", status, m)
	}
}

// A code is redeemed only with the redirect_uri it was issued for (RFC 6749
// §4.1.3): not another port of the same loopback address (which the
// authorization endpoint would accept), not another host, not none.
func TestOIDCCodeBoundToRedirectURI(t *testing.T) {
	e := newOPEnv(t)
	e.register("alice", "alice@example.com")
	a := newAuthorization(e.cliConfig("127.0.0.1:5555"))
	code := e.codeFlow(t, a, "alice", nil).Get("code")
	for _, redirect := range []string{"http://127.0.0.1:6666/callback", "http://[::1]:5555/callback", "http://127.0.0.1:5555/other", ""} {
		t.Run("redirect "+redirect, func(t *testing.T) {
			fields := []string{"code_verifier", a.verifier}
			if redirect != "" {
				fields = append(fields, "redirect_uri", redirect)
			}
			status, m := e.exchange(code, fields...)
			if status != http.StatusBadRequest || m["error"] != "invalid_grant" || m["access_token"] != nil {
				t.Fatalf("%d %v, want 400 invalid_grant", status, m)
			}
		})
	}
	if status, m := e.exchange(code, "code_verifier", a.verifier, "redirect_uri", a.cfg.RedirectURL); status != 200 || m["access_token"] == nil {
		t.Fatalf("the right redirect_uri after refusals: %d %v", status, m)
	}
}

// A code lives authCodeTTL on the server's clock: redeemed just before, it
// works; at its lifetime, invalid_grant.
func TestOIDCCodeExpires(t *testing.T) {
	e := newOPEnv(t)
	e.register("alice", "alice@example.com")
	for _, tc := range []struct {
		name  string
		after time.Duration
		ok    bool
	}{
		{"just before", authCodeTTL - 2*time.Second, true},
		{"at its lifetime", authCodeTTL, false},
		{"long after", 2 * authRequestTTL, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuthorization(e.cliConfig("127.0.0.1:5555"))
			code := e.codeFlow(t, a, "alice", nil).Get("code")
			e.clock.Add(tc.after)
			status, m := e.exchange(code, "code_verifier", a.verifier, "redirect_uri", a.cfg.RedirectURL)
			if tc.ok && (status != 200 || m["access_token"] == nil) {
				t.Fatalf("%s after issue: %d %v", tc.after, status, m)
			}
			if !tc.ok && (status != http.StatusBadRequest || m["error"] != "invalid_grant" || m["access_token"] != nil) {
				t.Fatalf("%s after issue: %d %v, want 400 invalid_grant", tc.after, status, m)
			}
		})
	}
}

// Device codes are unguessable: base64url, at least 128 random bits each,
// all distinct, and no bit fixed across many of them (RFC 8628 §5.2).
func TestOIDCDeviceCodeEntropy(t *testing.T) {
	e := newOPEnv(t)
	cfg := e.cliConfig("127.0.0.1")
	var codes []string
	for range 200 {
		da, err := cfg.DeviceAuth(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, da.DeviceCode)
	}
	randcheck.Check(t, "device_code", codes, 16)
}
