package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// cliTokens logs alice in through latch-cli and returns its tokens.
func (e *env) cliTokens(t *testing.T) (*oauth2.Config, *oauth2.Token) {
	t.Helper()
	a := newAuthorization(e.cliConfig("127.0.0.1:9999"))
	q := e.codeFlow(t, a, "alice", nil)
	tok, err := a.cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatal(err)
	}
	return a.cfg, tok
}

// refreshGrant redeems a refresh token at the token endpoint.
func (e *env) refreshGrant(tok string) (int, map[string]any) {
	return e.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}, "client_id": {CLIClientID}})
}

func TestOIDCRefreshRotation(t *testing.T) {
	e := newOPEnv(t, func(c *Config) { c.ReuseGrace = -1 })
	e.register("alice", "alice@example.com")
	_, tok := e.cliTokens(t)
	first := tok.RefreshToken
	status, m := e.refreshGrant(first)
	second, _ := m["refresh_token"].(string)
	if status != 200 || second == "" || second == first || m["id_token"] == nil {
		t.Fatalf("rotate: %d %v", status, m)
	}
	if status, m := e.refreshGrant(second); status != 200 {
		t.Fatalf("rotate again: %d %v", status, m)
	} else {
		third := m["refresh_token"].(string)
		// The first token again: reuse, the family ends, even its newest.
		if status, m := e.refreshGrant(first); status != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("replay: %d %v", status, m)
		}
		if status, m := e.refreshGrant(third); status != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("newest after replay: %d %v", status, m)
		}
	}
	if r := e.bearer("GET", "/auth/me", tok.AccessToken, nil); r.Status != http.StatusUnauthorized {
		t.Errorf("access token of a revoked family: %d", r.Status)
	}
	if n := e.srv.metrics.refreshes.get(refreshReused); n != 1 {
		t.Errorf("latch_refreshes_total{result=reused} = %d", n)
	}
	// An account-API refresh token is not one for the token endpoint.
	if status, m := e.refreshGrant(e.login("alice").RefreshToken); status != 400 || m["error"] != "invalid_grant" {
		t.Errorf("account-API token at the token endpoint: %d %v", status, m)
	}
}

func TestOIDCRevocation(t *testing.T) {
	e := newOPEnv(t)
	e.register("alice", "alice@example.com")
	for _, kind := range []string{"refresh_token", "access_token"} {
		t.Run(kind, func(t *testing.T) {
			_, tok := e.cliTokens(t)
			if info := e.bearer("GET", "/userinfo", tok.AccessToken, nil); info.Status != 200 || info.json(t)["sub"] == nil {
				t.Fatalf("userinfo: %d %s", info.Status, info.Body)
			}
			revoke := tok.RefreshToken
			if kind == "access_token" {
				revoke = tok.AccessToken
			}
			if status, _ := e.postForm("/revoke", url.Values{"token": {revoke}, "token_type_hint": {kind}, "client_id": {CLIClientID}}); status != 200 {
				t.Fatalf("revoke: %d", status)
			}
			if r := e.bearer("GET", "/auth/me", tok.AccessToken, nil); r.Status != http.StatusUnauthorized {
				t.Errorf("/auth/me after revocation: %d", r.Status)
			}
			if info := e.bearer("GET", "/userinfo", tok.AccessToken, nil); info.Status == 200 {
				t.Errorf("userinfo after revocation: %d %s", info.Status, info.Body)
			}
			if status, m := e.refreshGrant(tok.RefreshToken); status != 400 || m["error"] != "invalid_grant" {
				t.Errorf("refresh after revocation: %d %v", status, m)
			}
		})
	}
	t.Run("unknown token", func(t *testing.T) {
		if status, _ := e.postForm("/revoke", url.Values{"token": {"lrt_nothing"}, "client_id": {CLIClientID}}); status != 200 {
			t.Errorf("unknown token: %d (RFC 7009: 200)", status)
		}
	})
	t.Run("another client's token", func(t *testing.T) {
		_, tok := e.cliTokens(t)
		// Sessions of the account API listing, then logout --all ends it.
		r := e.bearer("GET", "/auth/sessions", tok.AccessToken, nil)
		var list struct{ Sessions []struct{ ID string } }
		json.Unmarshal(r.Body, &list)
		if len(list.Sessions) == 0 {
			t.Fatalf("no session listed: %s", r.Body)
		}
	})
}

func TestOIDCLogoutAllEndsGrants(t *testing.T) {
	e := newOPEnv(t)
	e.register("alice", "alice@example.com")
	_, tok := e.cliTokens(t)
	// What `latch logout --all` does: revoke every listed session.
	var list struct{ Sessions []struct{ ID string } }
	json.Unmarshal(e.bearer("GET", "/auth/sessions", tok.AccessToken, nil).Body, &list)
	for _, s := range list.Sessions {
		if r := e.bearer("DELETE", "/auth/sessions/"+s.ID, tok.AccessToken, nil); r.Status != 204 && r.Status != 401 {
			t.Fatalf("revoke %s: %d", s.ID, r.Status)
		}
	}
	if status, _ := e.refreshGrant(tok.RefreshToken); status != 400 {
		t.Errorf("refresh after logout --all: %d", status)
	}
}

func TestOIDCDiscoveryAndKeys(t *testing.T) {
	e := newOPEnv(t)
	iss := e.srv.cfg.Issuer
	r := e.do("GET", "/.well-known/openid-configuration", nil)
	d := r.json(t)
	for k, want := range map[string]any{
		"issuer": iss, "authorization_endpoint": iss + "/authorize", "token_endpoint": iss + "/oauth/token",
		"device_authorization_endpoint": iss + "/device_authorization", "revocation_endpoint": iss + "/revoke",
		"userinfo_endpoint": iss + "/userinfo", "introspection_endpoint": iss + "/oauth/introspect",
		"end_session_endpoint": iss + "/end_session", "jwks_uri": iss + "/keys",
		"authorization_response_iss_parameter_supported": true,
	} {
		if d[k] != want {
			t.Errorf("%s = %v, want %v", k, d[k], want)
		}
	}
	if m, _ := json.Marshal(d["code_challenge_methods_supported"]); string(m) != `["S256"]` {
		t.Errorf("code_challenge_methods_supported = %s", m)
	}
	if m, _ := json.Marshal(d["id_token_signing_alg_values_supported"]); string(m) != `["ES256"]` {
		t.Errorf("id_token_signing_alg_values_supported = %s", m)
	}
	// One key set: the provider's and the account API's.
	var op, api struct{ Keys []struct{ Kid, Alg string } }
	json.Unmarshal(e.do("GET", "/keys", nil).Body, &op)
	json.Unmarshal(e.do("GET", "/auth/jwks.json", nil).Body, &api)
	if len(op.Keys) != 1 || len(api.Keys) != 1 || op.Keys[0] != api.Keys[0] || op.Keys[0].Alg != "ES256" {
		t.Errorf("keys: provider %v, account API %v", op.Keys, api.Keys)
	}
	// The account API's paths are still its own.
	if r := e.do("GET", "/healthz", nil); r.Status != 200 || !strings.Contains(string(r.Body), `"ok"`) {
		t.Errorf("/healthz: %d %s", r.Status, r.Body)
	}
	if r := e.do("GET", "/metrics", nil); !strings.Contains(string(r.Body), "latch_oauth_tokens_total{grant=\"authorization_code\"}") {
		t.Errorf("metrics lack the provider's counters")
	}
}

func TestOIDCNoSecretsInLogs(t *testing.T) {
	e := newOPEnv(t)
	e.register("alice", "alice@example.com")
	a := newAuthorization(e.cliConfig("127.0.0.1:9999"))
	q := e.codeFlow(t, a, "alice", nil)
	tok, err := a.cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatal(err)
	}
	logs := e.logs.String()
	for _, secret := range []string{goodPassword, q.Get("code"), tok.AccessToken, tok.RefreshToken, a.verifier, a.state} {
		if strings.Contains(logs, secret) {
			t.Errorf("a secret is in the logs: %.12s…", secret)
		}
	}
	if e.srv.metrics.oauthTokens.get("authorization_code") != 1 {
		t.Errorf("latch_oauth_tokens_total{grant=authorization_code} = %d", e.srv.metrics.oauthTokens.get("authorization_code"))
	}
}
