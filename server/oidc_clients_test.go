package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

const webSecret = "s3cr3t-Yq8vC1m0pX7rT2kW9nB4hJ6dF5gL3aZ"

// withClients loads a clients file as `latch serve --clients` does: a
// public third-party app and a confidential web app.
func withClients(t *testing.T) func(*Config) {
	sum := sha256.Sum256([]byte(webSecret))
	path := filepath.Join(t.TempDir(), "clients.yaml")
	err := os.WriteFile(path, []byte(`clients:
  - id: notes
    name: Notes App
    redirect_uris: ["http://127.0.0.1/cb"]
    grant_types: [authorization_code, refresh_token, device_code]
  - id: web
    name: Web Portal
    secret_sha256: `+hex.EncodeToString(sum[:])+`
    redirect_uris: ["https://portal.example/cb"]
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	clients, err := LoadClients(path)
	if err != nil {
		t.Fatal(err)
	}
	return func(c *Config) { c.Clients = clients }
}

func TestLoadClientsRejects(t *testing.T) {
	for name, body := range map[string]string{
		"no id":          "clients: [{redirect_uris: [https://a.example/cb]}]",
		"built-in id":    "clients: [{id: latch-cli, redirect_uris: [https://a.example/cb]}]",
		"plain secret":   "clients: [{id: a, secret_sha256: hunter2, redirect_uris: [https://a.example/cb]}]",
		"http redirect":  "clients: [{id: a, redirect_uris: [http://a.example/cb]}]",
		"unknown grant":  "clients: [{id: a, grant_types: [password], redirect_uris: [https://a.example/cb]}]",
		"no redirect":    "clients: [{id: a}]",
		"unknown field":  "clients: [{id: a, secret: x, redirect_uris: [https://a.example/cb]}]",
		"not yaml":       "clients: [",
		"fragment":       "clients: [{id: a, redirect_uris: ['https://a.example/cb#x']}]",
		"relative":       "clients: [{id: a, redirect_uris: [/cb]}]",
		"custom scheme?": "clients: [{id: a, redirect_uris: ['myapp:/cb']}]",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(path, []byte(body), 0o600)
			if _, err := LoadClients(path); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	// Twice the same id: refused when the server starts.
	_, err := New(context.Background(), Config{Issuer: "http://127.0.0.1:1", SecretKey: make([]byte, 32),
		Clients: []ClientConfig{{ID: "a", RedirectURIs: []string{"https://a.example/cb"}}, {ID: "a", RedirectURIs: []string{"https://a.example/cb"}}}})
	if err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("duplicate client: %v", err)
	}
}

func TestOIDCConsent(t *testing.T) {
	e := newOPEnv(t, withClients(t))
	e.register("alice", "alice@example.com")
	cfg := e.oauthConfig("notes", "", "http://127.0.0.1:7777/cb")
	for _, decision := range []string{"deny", "approve"} {
		t.Run(decision, func(t *testing.T) {
			a := newAuthorization(cfg)
			b := e.newBrowser()
			p := submitLogin(t, b, b.Get(a.url()), "alice")
			text := p.Text()
			for _, want := range []string{"Notes App", "alice", "email address", "Stay signed in"} {
				if !strings.Contains(text, want) {
					t.Errorf("consent page lacks %q: %s", want, text)
				}
			}
			q := e.callback(t, a, b.Next(b.Submit(p, nil, "decision", decision)))
			if decision == "deny" {
				if q.Get("error") != "access_denied" || q.Get("code") != "" {
					t.Fatalf("deny: %v", q)
				}
				if n := e.srv.metrics.oauthDenied.get("browser"); n != 1 {
					t.Errorf("latch_oauth_denied_total{flow=browser} = %d", n)
				}
				return
			}
			tok, err := cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(a.verifier))
			if err != nil {
				t.Fatal(err)
			}
			e.verifyID(t, tok, "notes", a.nonce)
			// A third party's access token is not one for the account API.
			if r := e.bearer("GET", "/auth/me", tok.AccessToken, nil); r.Status != http.StatusUnauthorized {
				t.Errorf("/auth/me with a third-party token: %d", r.Status)
			}
			// Nor is its refresh token.
			if r := e.refresh(tok.RefreshToken); r.Status != http.StatusUnauthorized {
				t.Errorf("/auth/refresh with a third-party refresh token: %d %s", r.Status, r.Body)
			}
			// But userinfo answers, within the scopes.
			info := e.bearer("GET", "/userinfo", tok.AccessToken, nil)
			if info.Status != 200 || info.json(t)["email"] != "alice@example.com" || info.json(t)["preferred_username"] != "alice" {
				t.Errorf("userinfo: %d %s", info.Status, info.Body)
			}
		})
	}
}

func TestOIDCConfidentialClient(t *testing.T) {
	e := newOPEnv(t, withClients(t))
	e.register("alice", "alice@example.com")
	right := e.oauthConfig("web", webSecret, "https://portal.example/cb")
	a := newAuthorization(right)
	b := e.newBrowser()
	q := e.callback(t, a, b.Next(b.Submit(submitLogin(t, b, b.Get(a.url()), "alice"), nil, "decision", "approve")))

	wrong := *right
	wrong.ClientSecret = "not-the-secret"
	if _, err := wrong.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(a.verifier)); oauthErr(err) != "invalid_client" {
		t.Fatalf("wrong secret: %v", err)
	}
	// A failed client authentication does not spend the code.
	tok, err := right.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatal(err)
	}
	// A confidential client may introspect.
	status, m := e.postForm("/oauth/introspect", url.Values{"token": {tok.AccessToken}}, "web", webSecret)
	if status != 200 || m["active"] != true || m["client_id"] != "web" || m["username"] != "alice" {
		t.Fatalf("introspect: %d %v", status, m)
	}
	if status, _ := e.postForm("/oauth/introspect", url.Values{"token": {tok.AccessToken}}, "web", "nope"); status != http.StatusUnauthorized {
		t.Errorf("introspect with a wrong secret: %d", status)
	}
	if status, _ := e.postForm("/oauth/introspect", url.Values{"token": {tok.AccessToken}, "client_id": {"latch-cli"}}); status != http.StatusUnauthorized {
		t.Errorf("introspect by a public client: %d", status)
	}
}
