package server

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latch-dev/latch/internal/webform"
)

// startDevice starts a device authorization as latch-cli.
func (e *env) startDevice(t *testing.T, cfg *oauth2.Config) *oauth2.DeviceAuthResponse {
	t.Helper()
	da, err := cfg.DeviceAuth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if da.VerificationURI != e.srv.cfg.Issuer+"/device" || !strings.HasSuffix(da.VerificationURIComplete, "/device?user_code="+url.QueryEscape(da.UserCode)) {
		t.Fatalf("verification URIs: %q %q", da.VerificationURI, da.VerificationURIComplete)
	}
	return da
}

// approveDevice walks the browser through the verification page: the code
// (prefilled), login as name (with a code step if step is set), consent.
func (e *env) approveDevice(t *testing.T, da *oauth2.DeviceAuthResponse, name, decision string, step func(*webform.Browser, *webform.Page) *webform.Page) *webform.Page {
	t.Helper()
	b := e.newBrowser()
	p := b.Get(da.VerificationURIComplete)
	if f := p.Field("user_code"); f == nil || webform.Attr(f, "value") != da.UserCode {
		t.Fatalf("device page: want user_code prefilled: %s", p.Body)
	}
	p = submitLogin(t, b, b.Submit(p, nil), name)
	if step != nil {
		p = step(b, p)
	}
	if !strings.Contains(p.Text(), "latch (command line)") || !strings.Contains(p.Text(), "Stay signed in") {
		t.Fatalf("want the consent page with the client and scopes: %s", p.Text())
	}
	return b.Submit(p, nil, "decision", decision)
}

// deviceToken polls once a second (the server says 5: x/oauth2 would wait).
func deviceToken(cfg *oauth2.Config, da *oauth2.DeviceAuthResponse) (*oauth2.Token, error) {
	d := *da
	d.Interval = 1
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cfg.DeviceAccessToken(ctx, &d)
}

func TestOIDCDeviceGrant(t *testing.T) {
	e := newOPEnv(t)
	e.register("alice", "alice@example.com")
	u := e.enrol("mallory")
	cfg := e.cliConfig("127.0.0.1")
	for _, tc := range []struct {
		name string
		step func(*webform.Browser, *webform.Page) *webform.Page
	}{
		{"alice", nil},
		{"mallory", func(b *webform.Browser, p *webform.Page) *webform.Page {
			e.clock.Add(30 * time.Second)
			return b.Submit(p, map[string]string{"code": totpCode(t, u.secret, e.clock.Now())})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			da := e.startDevice(t, cfg)
			// Pending until the user answers.
			if status, m := e.postForm("/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
				"device_code": {da.DeviceCode}, "client_id": {CLIClientID}}); status != 400 || m["error"] != "authorization_pending" {
				t.Fatalf("before approval: %d %v", status, m)
			}
			done := e.approveDevice(t, da, tc.name, "approve", tc.step)
			if !strings.Contains(done.Text(), "approved") {
				t.Fatalf("result page: %s", done.Text())
			}
			tok, err := deviceToken(cfg, da)
			if err != nil {
				t.Fatal(err)
			}
			// The subject is the account's user id (not its name).
			id := e.verifyID(t, tok, CLIClientID, "")
			if uid := e.userID(tok.AccessToken); id.Subject != uid {
				t.Errorf("sub = %q, want the user id %q", id.Subject, uid)
			}
			// The refresh grant works: the device grant recorded its client.
			next, err := cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			if err != nil {
				t.Fatalf("refresh after a device grant: %v", err)
			}
			if next.RefreshToken == tok.RefreshToken || e.userID(next.AccessToken) != id.Subject {
				t.Errorf("refresh: same token or another user")
			}
			// The device code is good once.
			if _, err := deviceToken(cfg, da); oauthErr(err) != "access_denied" {
				t.Errorf("device code used twice: %v", err)
			}
		})
	}
}

func TestOIDCDeviceDenied(t *testing.T) {
	e := newOPEnv(t)
	e.register("alice", "alice@example.com")
	cfg := e.cliConfig("127.0.0.1")
	da := e.startDevice(t, cfg)
	if p := e.approveDevice(t, da, "alice", "deny", nil); !strings.Contains(p.Text(), "denied") {
		t.Fatalf("result page: %s", p.Text())
	}
	if _, err := deviceToken(cfg, da); oauthErr(err) != "access_denied" {
		t.Fatalf("denied: %v", err)
	}
	if n := e.srv.metrics.oauthDenied.get("device"); n != 1 {
		t.Errorf("latch_oauth_denied_total{flow=device} = %d", n)
	}
}

func TestOIDCDeviceExpired(t *testing.T) {
	e := newOPEnv(t)
	e.register("alice", "alice@example.com")
	cfg := e.cliConfig("127.0.0.1")
	da := e.startDevice(t, cfg)
	e.clock.Add(deviceCodeTTL)
	status, m := e.postForm("/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
		"device_code": {da.DeviceCode}, "client_id": {CLIClientID}})
	if status != 400 || m["error"] != "expired_token" {
		t.Fatalf("expired device code: %d %v", status, m)
	}
	// Nor can the user code be entered any more.
	b := e.newBrowser()
	p := b.Submit(b.Get(da.VerificationURIComplete), nil)
	if p.Status != http.StatusBadRequest || p.Field("password") != nil {
		t.Fatalf("expired user code accepted: %d %s", p.Status, p.Text())
	}
}

func TestOIDCDeviceCodeBoundToClient(t *testing.T) {
	e := newOPEnv(t, withClients(t))
	e.register("alice", "alice@example.com")
	da := e.startDevice(t, e.cliConfig("127.0.0.1"))
	e.approveDevice(t, da, "alice", "approve", nil)
	status, m := e.postForm("/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
		"device_code": {da.DeviceCode}, "client_id": {"notes"}})
	if status == 200 || m["access_token"] != nil {
		t.Fatalf("another client redeemed latch-cli's device code: %d %v", status, m)
	}
}

func TestOIDCDeviceUserCodeTyped(t *testing.T) {
	e := newOPEnv(t)
	e.register("alice", "alice@example.com")
	da := e.startDevice(t, e.cliConfig("127.0.0.1"))
	b := e.newBrowser()
	p := b.Get(e.srv.cfg.Issuer + "/device")
	typed := strings.ToLower(strings.ReplaceAll(da.UserCode, "-", " "))
	if p = b.Submit(p, map[string]string{"user_code": typed}); p.Field("password") == nil {
		t.Fatalf("typed user code %q refused: %s", typed, p.Text())
	}
	if p = b.Submit(p, map[string]string{"csrf": "\x00", "username": "alice", "password": goodPassword}); p.Status != http.StatusForbidden {
		t.Fatalf("device login without CSRF token: %d", p.Status)
	}
}
