package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latch-dev/latch/internal/webform"
)

// newOPEnv starts a server whose issuer is its own loopback URL, so that a
// browser and OAuth clients can follow it. Its clock is the wall clock (plus
// what a test moves it by): op stamps iat, nbf and ID-token expiry from the
// wall clock itself, and a frozen clock would find a token issued after the
// next second boundary "not valid yet".
func newOPEnv(t *testing.T, mod ...func(*Config)) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{wall: true}
	logs := &syncBuffer{}
	cfg := Config{
		DBPath:    testDB(t, MemoryDB),
		Issuer:    "http://" + ln.Addr().String(),
		SecretKey: bytes.Repeat([]byte{7}, 32),
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:       c.Now,
		RateIP:    -1, RateAccount: -1,
		argon: &testArgon,
	}
	for _, m := range mod {
		m(&cfg)
	}
	srv, err := New(context.Background(), cfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return &env{t: t, srv: srv, http: hs, clock: c, logs: logs}
}

// cliConfig is latch-cli as an x/oauth2 client, redirecting to host (any
// port: the client does not listen, the browser stops at the redirect).
func (e *env) cliConfig(redirectHost string) *oauth2.Config {
	return e.oauthConfig(CLIClientID, "", "http://"+redirectHost+"/callback")
}

func (e *env) oauthConfig(id, secret, redirect string) *oauth2.Config {
	iss := e.srv.cfg.Issuer
	return &oauth2.Config{
		ClientID: id, ClientSecret: secret, RedirectURL: redirect,
		Scopes: []string{"openid", "profile", "email", "offline_access"},
		Endpoint: oauth2.Endpoint{
			AuthURL: iss + "/authorize", TokenURL: iss + "/oauth/token", DeviceAuthURL: iss + "/device_authorization",
		},
	}
}

// newBrowser is a browser with its own cookies at the server; it stops at
// any other host: the OAuth client's redirect URI.
func (e *env) newBrowser() *webform.Browser {
	return webform.New(e.t, e.http.URL)
}

// postForm sends a form to the server as an OAuth client would, and
// decodes the JSON answer.
func (e *env) postForm(path string, v url.Values, basic ...string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.http.URL+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		req.SetBasicAuth(basic[0], basic[1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	raw, _ := io.ReadAll(res.Body)
	json.Unmarshal(raw, &m)
	return res.StatusCode, m
}

// oauthErr is the OAuth error code of a failed x/oauth2 call.
func oauthErr(err error) string {
	if re, ok := err.(*oauth2.RetrieveError); ok {
		return re.ErrorCode
	}
	return ""
}
