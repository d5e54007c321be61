package server

import (
	"net/http"
	"net/url"
	"testing"
)

// An authorization request that repeats a parameter is refused with the
// error page (RFC 6749 §3.1: parameters MUST NOT be included more than
// once): latch checks the first redirect_uri, op uses the last, and the
// built-in client's glob lets op accept http://localhost%2F@evil.example/,
// which the browser sends to evil.example with the code.
func TestOIDCAuthorizeRepeatedParameters(t *testing.T) {
	e := newOPEnv(t)
	e.register("alice", "alice@example.com")
	for _, extra := range []string{
		"&redirect_uri=" + url.QueryEscape("http://localhost%2F@evil.example/steal"),
		"&client_id=" + CLIClientID,
	} {
		a := newAuthorization(e.oauthConfig(CLIClientID, "", "http://127.0.0.1:5555/callback"))
		p := e.newBrowser().Get(a.url() + extra)
		if p.Redirect != nil || p.Status != http.StatusBadRequest {
			t.Errorf("%s: want the error page, got %d redirect %v", extra, p.Status, p.Redirect)
		}
	}
}
